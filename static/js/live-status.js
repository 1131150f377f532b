/* Connections page: while any row is pending, fetch the rows again every few seconds
   (GET <data-refresh-url>, an HTML fragment) and swap them in, so the page shows
   "Active" once the other side accepts. Stops when nothing is pending any more. */
(function () {
  "use strict";

  var table = document.getElementById("connections-table");
  if (!table || !window.fetch) {
    return;
  }
  var rows = table.tBodies[0];
  var note = document.getElementById("live-note");
  var url = table.getAttribute("data-refresh-url");
  var every = (parseFloat(table.getAttribute("data-refresh-seconds")) || 5) * 1000;

  function anyPending() {
    return rows.querySelector('[data-status="pending"]') !== null;
  }

  function schedule() {
    var pending = anyPending();
    if (note) {
      note.hidden = !pending;
    }
    if (pending) {
      window.setTimeout(refresh, every);
    }
  }

  function refresh() {
    if (document.hidden) {
      // A background tab waits until it is looked at again.
      document.addEventListener("visibilitychange", refresh, { once: true });
      return;
    }
    fetch(url, { credentials: "same-origin", cache: "no-store", redirect: "manual" })
      .then(function (response) {
        // A redirect (the session ended) or an error: stop quietly, the page still works.
        if (!response.ok || response.type === "opaqueredirect") {
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        rows.innerHTML = html;
        schedule();
      })
      .catch(function () {
        window.setTimeout(refresh, every * 2);
      });
  }

  schedule();
})();
