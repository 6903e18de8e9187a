// The map of the territories (Leaflet, no tiles): outlines and territories come as JSON
// from the console's routes (data-outlines, data-source); a click opens the territory.
(function () {
  "use strict";
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(url + " : " + r.status); } return r.json(); });
  }
  function start() {
    var el = document.getElementById("carte");
    if (!el || !window.L) { return; }
    var map = L.map(el, { zoomSnap: 0.25, attributionControl: false, preferCanvas: false });
    map.setView([46.6, 2.5], 5.5);
    var select = document.getElementById("couleur");
    var territories = null;
    function colourOf(feature) {
      var p = feature.properties;
      return select && select.value === "state" ? p.stateColour : p.regionColour;
    }
    function restyle() {
      if (!territories) { return; }
      territories.setStyle(function (f) {
        return { color: "#161616", weight: 0.6, fillColor: colourOf(f), fillOpacity: 0.75 };
      });
      document.querySelectorAll("[data-legend]").forEach(function (block) {
        block.hidden = block.getAttribute("data-legend") !== (select ? select.value : "region");
      });
    }
    Promise.all([getJSON(el.getAttribute("data-outlines")), getJSON(el.getAttribute("data-source"))])
      .then(function (got) {
        var outlines = got[0], data = got[1];
        L.geoJSON(outlines.departements, {
          interactive: false,
          style: { color: "#929292", weight: 0.5, fill: true, fillColor: "#ffffff", fillOpacity: 1, className: "tiw-departement" }
        }).addTo(map);
        L.geoJSON(outlines.regions, {
          interactive: false, style: { color: "#3a3a3a", weight: 1.2, fill: false, className: "tiw-region" }
        }).addTo(map);
        territories = L.geoJSON(data.territories, {
          style: { className: "tiw-territoire" },
          onEachFeature: function (feature, layer) {
            var p = feature.properties;
            layer.bindTooltip(p.name + " — " + (select && select.value === "state" ? p.state : p.region), { sticky: true });
            layer.on("click", function () { window.location.assign(p.url); });
            layer.on("add", function () {
              var path = layer.getElement && layer.getElement();
              if (path) { path.setAttribute("data-territoire", p.id); }
            });
          }
        }).addTo(map);
        restyle();
        if (el.getAttribute("data-zoom") === "territoire" && data.territories.features.length) {
          map.fitBounds(territories.getBounds(), { padding: [20, 20], maxZoom: 9 });
        } else {
          map.fitBounds([[41.3, -5.2], [51.1, 9.6]]);
        }
        el.setAttribute("data-drawn", String(data.territories.features.length));
      })
      .catch(function () {
        el.textContent = "La carte n'a pas pu être chargée ; la liste des territoires reste disponible ci-dessous.";
      });
    if (select) { select.addEventListener("change", restyle); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
