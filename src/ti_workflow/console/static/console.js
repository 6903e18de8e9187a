// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Countdown to the closing instant: the server gave the seconds left (its own clock).
  function words(seconds) {
    var m = Math.max(Math.floor(seconds / 60), 0);
    var d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60), min = m % 60;
    function u(n, w) { return n + "\u00a0" + w + (n > 1 ? "s" : ""); }
    if (d) { return u(d, "jour") + (h ? " et " + u(h, "heure") : ""); }
    if (h) { return u(h, "heure") + (min ? " et " + u(min, "minute") : ""); }
    return u(min, "minute");
  }
  function tick() {
    document.querySelectorAll(".tiw-left[data-seconds]").forEach(function (el) {
      var left = parseInt(el.getAttribute("data-seconds"), 10) - 60;
      el.setAttribute("data-seconds", String(left));
      el.textContent = words(left);
    });
  }
  setInterval(tick, 60000);
  // Put the focus on the error summary of a refused form (RGAA).
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("erreurs");
    if (summary) { summary.focus(); }
  });
})();
