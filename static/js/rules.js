// Sync rules page: Tab indents in the script boxes, a click on an error selects its
// line (in the editor when editor.bundle.js has started one), and leaving the page with
// unsaved edits asks first.
(function () {
  "use strict";
  var form = document.getElementById("rules-form");
  if (!form) return;
  var areas = form.querySelectorAll("textarea.code");
  // After a test run or a refused save the boxes hold text that is not saved yet.
  var dirty = form.dataset.unsaved === "true";

  areas.forEach(function (area) {
    area.addEventListener("input", function () { dirty = true; });
    area.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey || event.ctrlKey || event.altKey || area.readOnly) return;
      event.preventDefault();
      var start = area.selectionStart, end = area.selectionEnd;
      area.setRangeText("    ", start, end, "end");
      dirty = true;
    });
  });

  function selectLine(area, line) {
    var lines = area.value.split("\n");
    if (line < 1 || line > lines.length) return;
    var start = 0;
    for (var i = 0; i < line - 1; i++) start += lines[i].length + 1;
    area.focus();
    area.setSelectionRange(start, start + lines[line - 1].length);
    var lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 20;
    area.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  document.querySelectorAll(".problem[data-line][data-target]").forEach(function (item) {
    item.addEventListener("click", function () {
      var line = parseInt(item.dataset.line, 10), editor = window.exalateEditor;
      // With the editor (editor.bundle.js) the line is selected there; else in the textarea.
      if (editor && editor.has(item.dataset.target)) { editor.selectLine(item.dataset.target, line); return; }
      var area = document.getElementById(item.dataset.target);
      if (area) selectLine(area, parseInt(item.dataset.line, 10));
    });
  });

  form.addEventListener("submit", function () { dirty = false; });
  document.querySelectorAll("form button.restore").forEach(function (button) {
    button.form.addEventListener("submit", function (event) {
      if (dirty && !window.confirm("Your unsaved edits to the scripts will be lost. Restore anyway?")) {
        event.preventDefault();
      } else {
        dirty = false;
      }
    });
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });
})();
