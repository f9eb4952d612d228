// The running lesson's deck, moved to the slide of each step as it starts; the deck's own keys still work.
"use strict";
(function () {
  const frame = document.getElementById("deck");
  let lesson = null;
  function show(state) {
    if (!state.lesson_id) return;
    const hash = state.slide ? `#${state.slide}` : "";
    if (state.lesson_id !== lesson) {
      lesson = state.lesson_id;
      frame.src = `/deck?lesson=${encodeURIComponent(lesson)}${hash}`;
    } else if (hash && frame.contentWindow && frame.contentWindow.location.hash !== hash) {
      frame.contentWindow.location.hash = hash;
    }
  }
  const source = new EventSource("/events/room");
  source.addEventListener("state", (e) => show(JSON.parse(e.data)));
  source.addEventListener("bye", () => {
    source.close();
    document.getElementById("connection").textContent = "workshop has ended";
  });
  source.onopen = () => { document.getElementById("connection").textContent = "live"; };
  source.onerror = () => { document.getElementById("connection").textContent = "reconnecting…"; };
})();
