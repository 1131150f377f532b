// AI Assist on the sync rules page: "Draft with AI" asks with fetch() while a spinner
// runs, then puts the draft in the editors (the previous text is kept for "Discard the
// draft") and shows the diff and the test run. Without JavaScript the same button posts
// the form and the page comes back with the draft.
(function () {
  "use strict";
  var form = document.getElementById("rules-form");
  var panel = document.getElementById("assist");
  if (!form || !panel || !window.fetch) return;
  var result = document.getElementById("assist-result");
  var progress = document.getElementById("assist-progress");
  var previous = null; // the scripts as they were before the draft went in
  var timer = null;

  function area(direction) { return document.getElementById("id_" + direction); }

  function setScript(direction, text) {
    var editor = window.exalateEditor;
    if (editor && editor.has("id_" + direction)) { editor.setText("id_" + direction, text); return; }
    var box = area(direction);
    box.value = text;
    box.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function busy(on) {
    var button = document.getElementById("assist-draft");
    if (button) button.disabled = on;
    if (!progress) return;
    progress.hidden = !on;
    var text = progress.querySelector(".assist-progress-text"), started = Date.now();
    clearInterval(timer);
    if (on) {
      var limit = parseInt(panel.dataset.timeLimit || "60", 10);
      timer = setInterval(function () {
        var seconds = Math.round((Date.now() - started) / 1000);
        text.textContent = "Asking the model… " + seconds + " s (it may take up to " + limit + " s)";
      }, 1000);
      text.textContent = "Asking the model…";
    }
  }

  function show(html) {
    // One test run on the page at a time: the draft's replaces an earlier one.
    document.querySelectorAll("#test-run-result").forEach(function (old) {
      if (!result.contains(old)) old.remove();
    });
    result.innerHTML = html;
  }

  function showError(message) {
    show('<div class="message error" role="alert" id="assist-error"><p></p></div>');
    result.querySelector("p").textContent = message;
  }

  function applyDraft(data) {
    if (!previous) previous = { outgoing: area("outgoing").value, incoming: area("incoming").value };
    Object.keys(data.scripts).forEach(function (direction) { setScript(direction, data.scripts[direction]); });
    form.querySelector("[name=assist_prompt]").value = data.prompt;
    // The errors listed under the boxes were about the text before the draft.
    document.querySelectorAll(".rules-script .problems").forEach(function (list) { list.remove(); });
    if (window.exalateEditor) window.exalateEditor.markListedProblems();
  }

  function discard(event) {
    if (!previous) return; // no text to go back to here: the link reloads the saved rules
    event.preventDefault();
    setScript("outgoing", previous.outgoing);
    setScript("incoming", previous.incoming);
    previous = null;
    form.querySelector("[name=assist_prompt]").value = "";
    result.innerHTML = "";
    if (window.exalateEditor) window.exalateEditor.markListedProblems();
  }

  result.addEventListener("click", function (event) {
    if (event.target.id === "assist-discard") discard(event);
  });

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || button.id !== "assist-draft") return;
    event.preventDefault();
    var body = new FormData(form);
    busy(true);
    fetch(button.formAction, {
      method: "POST",
      body: body,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().catch(function () {
          throw new Error("The server answered HTTP " + response.status + " without a draft.");
        });
      })
      .then(function (data) {
        if (data.html) show(data.html);
        else showError(data.message || "AI Assist gave no answer.");
        if (data.ok) applyDraft(data);
      })
      .catch(function (error) { showError("AI Assist could not be reached: " + error.message); })
      .finally(function () { busy(false); });
  });
})();
