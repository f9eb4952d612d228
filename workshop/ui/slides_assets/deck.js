// workshop slides: keyboard navigation, `#N` in the address for the slide shown, `n` for the notes view.
// Inlined into each deck; it loads nothing and talks to no one.
(function () {
  "use strict";
  var WIDTH = 1280;
  var HEIGHT = 720;
  var slides = Array.prototype.slice.call(document.querySelectorAll(".slide"));
  var count = document.getElementById("count");
  var progress = document.getElementById("progress");
  var current = -1;
  document.documentElement.classList.add("js");

  function fromHash() {
    var n = parseInt(location.hash.slice(1), 10);
    if (isNaN(n)) return 0;
    return Math.min(Math.max(n, 1), slides.length) - 1;
  }

  // Scale the 1280x720 frame to the space the slide has, then shrink the type until the content fits
  // (a step with a long explanation must not run off the bottom of the projector).
  function layout() {
    var slide = slides[current];
    if (!slide) return;
    var frame = slide.querySelector(".frame");
    var scale = Math.min(slide.clientWidth / WIDTH, slide.clientHeight / HEIGHT);
    frame.style.transform = "translate(-50%, -50%) scale(" + scale + ")";
    var fit = 1;
    frame.style.setProperty("--fit", "1");
    while (frame.scrollHeight > frame.clientHeight + 1 && fit > 0.56) {
      fit -= 0.04;
      frame.style.setProperty("--fit", fit.toFixed(2));
    }
  }

  function show(index) {
    index = Math.min(Math.max(index, 0), slides.length - 1);
    if (index !== current) {
      if (current >= 0) slides[current].classList.remove("active");
      current = index;
      slides[current].classList.add("active");
      count.textContent = current + 1 + " / " + slides.length;
      progress.style.width = ((current + 1) / slides.length) * 100 + "%";
      layout();
    }
    if (location.hash !== "#" + (current + 1)) location.hash = "#" + (current + 1);
  }

  function toggleNotes() {
    document.body.classList.toggle("notes-view");
    layout();
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    switch (e.key) {
      case "ArrowRight":
      case "PageDown":
        show(current + 1);
        break;
      case "ArrowLeft":
      case "PageUp":
        show(current - 1);
        break;
      case " ":
        show(e.shiftKey ? current - 1 : current + 1);
        break;
      case "Home":
        show(0);
        break;
      case "End":
        show(slides.length - 1);
        break;
      case "n":
      case "N":
        toggleNotes();
        break;
      default:
        return;
    }
    e.preventDefault();
  });
  window.addEventListener("hashchange", function () {
    show(fromHash());
  });
  window.addEventListener("resize", layout);
  show(fromHash());
})();
