/* <time datetime="ISO" data-local-time>: show the moment in the viewer's own time zone.
   The server's rendering (in the node's time zone, with its abbreviation) stays as the
   fallback and in the tooltip. */
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
  });
  document.querySelectorAll("time[data-local-time]").forEach(function (element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (!isNaN(moment.getTime())) {
      element.title = element.textContent;
      element.textContent = format.format(moment);
    }
  });
})();
