/* The course's decks: reveal.js set-up, and a slide that overflows is shrunk to fit.
 *
 * Runs after reveal.js and its notes plugin, before MathJax (which calls
 * window.mlmDeckMathDone when it has typeset the page). When both are ready, every slide
 * whose content is taller than the slide gets a smaller font (down to 55%), and
 * <body data-deck="ready"> tells the tests (and anyone scripting the deck) that the
 * layout is final.
 */
(function () {
  "use strict";
  let mathDone = false;
  let revealReady = false;
  const MIN_SCALE = 0.55;

  /* The height of a slide's content: the bottom of its last child in the flow (not
   * scrollHeight, which counts MathJax's clipped, absolutely placed assistive MathML). */
  function contentHeight(section) {
    let bottom = 0;
    for (const child of section.children) {
      if (child.tagName === "ASIDE") continue;
      bottom = Math.max(bottom, child.offsetTop + child.offsetHeight);
    }
    return bottom;
  }
  window.mlmDeckContentHeight = contentHeight;
  window.mlmDeckFit = fit;

  /* An item wider than the slide (a long equation, a wide table) gets a smaller font. */
  function fitWidth(section) {
    const body = section.querySelector(".body");
    if (!body) return;
    for (const item of body.children) {
      item.style.fontSize = "";
      const ratio = item.scrollWidth / body.clientWidth;
      if (ratio > 1.0) {
        item.style.fontSize = Math.max(MIN_SCALE * 100, Math.floor(97 / ratio)) + "%";
      }
    }
  }

  function fit(section) {
    const limit = Reveal.getConfig().height;
    const display = section.style.display;
    section.style.display = "block";
    fitWidth(section);
    let scale = 1;
    section.style.fontSize = "";
    while (contentHeight(section) > limit && scale > MIN_SCALE) {
      scale = Math.round((scale - 0.05) * 100) / 100;
      section.style.fontSize = scale * 100 + "%";
    }
    section.style.display = display;
    section.dataset.fit = String(scale);
  }

  /* Speaker notes keep their TeX while MathJax typesets the slides (the speaker view is a
   * window of its own, without MathJax's styles); here every \( \) and \[ \] of a note
   * becomes MathML, which the browser draws natively in the speaker view. */
  function notesToMathML() {
    const decode = document.createElement("textarea");
    const pattern = /\\\(([\s\S]+?)\\\)|\\\[([\s\S]+?)\\\]/g;
    document.querySelectorAll(".reveal aside.notes").forEach(function (aside) {
      aside.innerHTML = aside.innerHTML.replace(pattern, function (match, inline, display) {
        decode.innerHTML = inline !== undefined ? inline : display;
        try {
          return MathJax.tex2mml(decode.value, { display: inline === undefined });
        } catch (error) {
          return match;
        }
      });
    });
  }

  function finish() {
    if (!(mathDone && revealReady)) return;
    notesToMathML();
    document.querySelectorAll(".reveal .slides > section").forEach(fit);
    Reveal.layout();
    document.body.dataset.deck = "ready";
  }

  window.mlmDeckMathDone = function () {
    mathDone = true;
    finish();
  };

  Reveal.initialize({
    width: 1280,
    height: 720,
    margin: 0.04,
    center: false,
    hash: true,
    slideNumber: "c/t",
    transition: "none",
    backgroundTransition: "none",
    pdfMaxPagesPerSlide: 1,
    plugins: [RevealNotes],
  }).then(function () {
    revealReady = true;
    finish();
  });
})();
