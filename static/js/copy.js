/* Copy buttons: <button data-copy-target="ID" data-copy-status="ID">.
   Uses the asynchronous clipboard API where the page may; otherwise it selects the text,
   tries the older copy command, and asks the user to press the copy keys. */
(function () {
  "use strict";

  function selectContents(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copyBySelection(element) {
    selectContents(element);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function say(button, text) {
    var status = document.getElementById(button.getAttribute("data-copy-status"));
    if (status) {
      status.textContent = text;
    }
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) {
      return;
    }
    var text = (target.value !== undefined ? target.value : target.textContent).trim();
    var fallback = function () {
      if (copyBySelection(target)) {
        say(button, "Copied to the clipboard.");
      } else {
        selectContents(target);
        say(button, "The code is selected: press Ctrl+C (\u2318C on a Mac) to copy it.");
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        say(button, "Copied to the clipboard.");
      }, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (button) {
      event.preventDefault();
      copy(button);
    }
  });
})();
