// The invitation code is shown in the answer to the POST that made it (it is kept nowhere
// else). The page then takes its own address, so that a reload or the Back button asks for
// /connections/<id>/invitation/ (which says the code was shown) instead of sending the
// POST again, which would make a new code and revoke the one just copied.
(function () {
  "use strict";
  var page = document.querySelector("[data-page-url]");
  if (page && window.history && typeof window.history.replaceState === "function") {
    window.history.replaceState(null, "", page.getAttribute("data-page-url"));
  }
})();
