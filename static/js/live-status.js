/* Connections page: while a row shown is pending, ask every few seconds about those rows
   only (GET <data-status-url>?status_of=<id>:<state>,…, a small JSON answer of the rows
   that changed, or 304 when nothing did) and replace just those rows, so the page shows
   "Active" once the other side accepts. Screen readers hear a short "N connections
   changed", not the whole table again. Stops when nothing shown is pending any more,
   waits while the tab is in the background, and backs off after errors. */
(function () {
  "use strict";

  var table = document.getElementById("connections-table");
  if (!table || !window.fetch) {
    return;
  }
  var rows = table.tBodies[0];
  var note = document.getElementById("live-note");
  var announcer = document.getElementById("live-changes");
  var url = table.getAttribute("data-status-url");
  var every = (parseFloat(table.getAttribute("data-refresh-seconds")) || 5) * 1000;
  var most = parseInt(table.getAttribute("data-page-size"), 10) || 50;
  var delay = every;
  var etag = null;
  var lastQuestion = null;

  function pendingRows() {
    return Array.prototype.slice.call(rows.querySelectorAll('tr[data-status="pending"]'), 0, most);
  }

  function schedule(wait) {
    var pending = pendingRows().length > 0;
    if (note) {
      note.hidden = !pending;
    }
    if (pending) {
      window.setTimeout(refresh, wait);
    }
  }

  function announce(count) {
    if (!announcer || !count) {
      return;
    }
    announcer.textContent = count === 1 ? "1 connection changed." : count + " connections changed.";
  }

  function apply(changes) {
    var count = 0;
    Object.keys(changes).forEach(function (id) {
      var row = rows.querySelector('tr[data-connection-id="' + CSS.escape(id) + '"]');
      if (!row) {
        return;
      }
      var html = changes[id].html;
      if (!html) {
        row.remove(); // deleted meanwhile
      } else {
        var holder = document.createElement("tbody");
        holder.innerHTML = html;
        var fresh = holder.querySelector("tr");
        if (!fresh) {
          return;
        }
        row.replaceWith(fresh);
      }
      count += 1;
    });
    announce(count);
  }

  function refresh() {
    if (document.hidden) {
      // A background tab waits until it is looked at again.
      document.addEventListener("visibilitychange", refresh, { once: true });
      return;
    }
    var asked = pendingRows().map(function (row) {
      return row.getAttribute("data-connection-id") + ":" + (row.getAttribute("data-state") || "pending");
    });
    if (!asked.length) {
      schedule(every);
      return;
    }
    var question = asked.join(",");
    var headers = {};
    if (etag && question === lastQuestion) {
      headers["If-None-Match"] = etag;
    }
    fetch(url + "?status_of=" + encodeURIComponent(question), {
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual",
      headers: headers,
    })
      .then(function (response) {
        if (response.status === 304) {
          return {};
        }
        // A redirect (the session ended) or a refusal: stop quietly, the page still works.
        if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        etag = response.headers.get("ETag");
        lastQuestion = question;
        return response.json();
      })
      .then(function (changes) {
        if (changes === null) {
          return;
        }
        apply(changes);
        delay = every;
        schedule(delay);
      })
      .catch(function () {
        // The node is restarting or the network is down: try again, less and less often.
        delay = Math.min(delay * 2, 60000);
        window.setTimeout(refresh, delay);
      });
  }

  schedule(every);
})();
