// The page follows the session over one server-sent event stream; it never sends anything back.
"use strict";
(function () {
  const view = document.documentElement.dataset.view;
  const $ = (id) => document.getElementById(id);
  let started = null, stepStarted = null, lastSeq = -1;

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  function tick() {
    if (started === null) return;
    const now = Date.now() / 1000;
    $("timer").textContent = clock(now - started) + (stepStarted ? ` (${clock(now - stepStarted)})` : "");
  }
  function show(state) {
    if (state.seq === lastSeq) return;
    lastSeq = state.seq;
    $("lesson").textContent = state.lesson_title || "waiting for a lesson to start…";
    $("step-title").textContent = state.step_title || "";
    $("step-count").textContent = state.step ? `step ${state.step}/${state.steps}` : "";
    $("status").textContent = state.status === "waiting" ? "" : state.status;
    $("status").className = `status ${state.status}`;
    const diagram = $("diagram");
    if (state.diagram_svg) {
      diagram.innerHTML = state.diagram_svg;  // drawn by Graphviz from the kernel's state; labels are escaped there
    } else {
      diagram.innerHTML = "";
      const p = document.createElement("p");
      p.className = "missing";
      p.textContent = state.diagram_error || "the diagram appears after the first step";
      diagram.appendChild(p);
    }
    if (view === "trainer") {
      started = state.started; stepStarted = state.step_started;
      $("notes").textContent = (state.notes || []).join("\n\n");
      $("pstree").innerHTML = state.pstree_html || "";  // rich's HTML export: text escaped, colours inline
      tick();
    }
  }
  function connect() {
    const source = new EventSource(`/events/${view}`);
    source.addEventListener("state", (e) => show(JSON.parse(e.data)));
    source.addEventListener("bye", () => {
      source.close();
      started = null;
      $("connection").textContent = "workshop has ended";
    });
    source.onopen = () => { $("connection").textContent = "live"; };
    source.onerror = () => { $("connection").textContent = "workshop is not running (reconnecting…)"; };
  }
  if (view === "trainer") setInterval(tick, 250);
  connect();
})();
