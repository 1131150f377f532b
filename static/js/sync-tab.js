/* Sync tab: while something is under way (data-pending="true"), ask every few seconds
   GET <data-status-url>?status_of=<part>:<digest>,…&<the page's own query> and replace
   only the parts whose digest changed (bulk exalate, queue, errors, synced requests).
   Stops once nothing is pending; waits while the tab is in the background; backs off
   when nothing changes and after errors. The page works without it (reload by hand). */
(function () {
  "use strict";

  var root = document.getElementById("sync-tab");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-status-url");
  var every = (parseFloat(root.getAttribute("data-refresh-seconds")) || 3) * 1000;
  var most = 30000;
  var delay = every;
  var note = document.getElementById("sync-live-note");
  var announcer = document.getElementById("sync-live");
  var names = { bulk: "Bulk exalate", queue: "Queue", errors: "Errors", twins: "Synced requests" };

  function parts() {
    return Array.prototype.slice.call(root.querySelectorAll("[data-part]"));
  }

  function pending() {
    return root.getAttribute("data-pending") === "true";
  }

  function schedule(wait) {
    if (note) {
      note.hidden = !pending();
    }
    if (pending()) {
      window.setTimeout(refresh, wait);
    }
  }

  function question() {
    var asked = parts().map(function (part) {
      return part.getAttribute("data-part") + ":" + (part.getAttribute("data-state") || "");
    });
    var params = new URLSearchParams(window.location.search);
    params.set("status_of", asked.join(","));
    return url + "?" + params.toString();
  }

  function apply(answer) {
    var changed = [];
    Object.keys(answer.parts || {}).forEach(function (name) {
      var part = root.querySelector('[data-part="' + CSS.escape(name) + '"]');
      if (!part) {
        return;
      }
      // Keep the keyboard where it was if it was inside the part being replaced.
      var focused = part.contains(document.activeElement) ? document.activeElement.id : null;
      part.innerHTML = answer.parts[name].html;
      part.setAttribute("data-state", answer.parts[name].state);
      if (focused && document.getElementById(focused)) {
        document.getElementById(focused).focus();
      }
      changed.push(names[name] || name);
    });
    root.setAttribute("data-pending", answer.pending ? "true" : "false");
    if (announcer && changed.length) {
      announcer.textContent = "Updated: " + changed.join(", ") + ".";
    }
    return changed.length;
  }

  function refresh() {
    if (document.hidden) {
      document.addEventListener("visibilitychange", refresh, { once: true });
      return;
    }
    fetch(question(), {
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        // The session ended or the permission went: stop quietly, the page still works.
        if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (answer) {
        if (answer === null) {
          return;
        }
        // Nothing changed: ask a little less often (a long wait for a retry, say).
        delay = apply(answer) ? every : Math.min(delay * 1.5, most);
        schedule(delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 60000);
        window.setTimeout(refresh, delay);
      });
  }

  schedule(every);
})();
