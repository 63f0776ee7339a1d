/* Area view: a choropleth of a stored area layer (crimelens areas load), from
   POST /choropleth/layers/{name}: counts, rates per 1,000 residents of a declared population
   column, or empirical-Bayes smoothed rates, classified on the server (legend lowest class first).
   Drawn on the map through CL.map.addLayer, so the map keeps it across redraws. */
"use strict";
(function (CL) {
  const $ = CL.$;
  const A = { layers: [], rows: [], legend: [] };

  /** Outer rings of a Polygon or MultiPolygon. */
  function rings(g) {
    if (g.type === "Polygon") return [g.coordinates[0]];
    if (g.type === "MultiPolygon") return g.coordinates.map((p) => p[0]);
    return [];
  }

  function drawLegend(d, unit) {
    const ol = $("al-legend");
    ol.replaceChildren();
    d.legend.forEach((c, i) => {
      const li = document.createElement("li"); li.dataset.cls = String(c.cls);
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = CL.SCHEMES.choropleth[i];
      sw.setAttribute("aria-hidden", "true");
      li.append(sw, c.label + " " + unit + " (" + c.units + " areas)");
      ol.appendChild(li);
    });
  }

  /** Map traces of the chosen layer (none when off): one filled trace per class, in class order. */
  async function traces(p) {
    const name = $("al-layer").value;
    A.rows = [];
    if (!name) { $("al-legend").replaceChildren(); return []; }
    const body = { measure: $("al-measure").value, scheme: $("al-scheme").value, k: 5 };
    if ($("al-pop").value) body.population = $("al-pop").value;
    let d;
    try {
      d = await CL.api("/choropleth/layers/" + encodeURIComponent(name) + "?" + p, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) {
      if (e.message !== "401") $("al-note").textContent = "Could not map the layer: " + e.message;
      return [];
    }
    const unit = d.parameters.units ? "per 1,000" : "incidents";
    const by = d.legend.map(() => ({ x: [], y: [] }));
    for (const f of d.features) {
      const k = f.properties.class - 1;
      for (const r of rings(f.geometry)) { for (const q of r) { by[k].x.push(q[0]); by[k].y.push(q[1]); } by[k].x.push(null); by[k].y.push(null); }
      A.rows.push([f.properties.area, f.properties.count, f.properties.population === undefined ? "" : f.properties.population,
        f.properties.value, f.properties.class]);
    }
    drawLegend(d, unit);
    CL.table("al-table", ["Area", "Incidents", "Population", "Value", "Class"], A.rows,
      "Areas of " + name + ": " + $("al-measure").selectedOptions[0].textContent);
    $("al-note").textContent = d.features.length + " areas; " + d.parameters.placed + " of " + d.parameters.incidents +
      " incidents fall inside the layer" + (d.parameters.smoothing ? "; " + d.parameters.smoothing : "") +
      (d.parameters.city_rate !== undefined ? "; city rate " + CL.fmt(d.parameters.city_rate, 2) + " per 1,000" : "") + ".";
    const group = name + ": " + $("al-measure").selectedOptions[0].textContent;
    return by.map((g, i) => ({ type: "scatter", mode: "lines", fill: "toself", x: g.x, y: g.y,
      fillcolor: CL.SCHEMES.choropleth[i], opacity: 0.7, line: { color: "rgba(60,60,60,0.6)", width: 0.6 },
      name: d.legend[i].label, legendgroup: "arealayer", legendgrouptitle: { text: group }, legendrank: 900 + i,
      hoverinfo: "skip", showlegend: g.x.length > 0 }));
  }

  function fillPopulation() {
    const l = A.layers.find((x) => x.name === $("al-layer").value);
    const sel = $("al-pop");
    sel.replaceChildren();
    for (const c of (l ? l.population : [])) sel.appendChild(new Option(c, c));
    if (!sel.options.length) sel.appendChild(new Option("none declared", ""));
  }

  async function load() {
    try { A.layers = await CL.api("/choropleth/layers"); } catch (e) { return; }
    const sel = $("al-layer"), was = sel.value;
    sel.replaceChildren(new Option("off", ""));
    for (const l of A.layers) sel.appendChild(new Option(l.name + " (" + l.areas + " areas)", l.name));
    if (A.layers.some((l) => l.name === was)) sel.value = was;
    fillPopulation();
    $("al-note").textContent = A.layers.length ? "" : "No area layers stored yet (crimelens areas load FILE).";
  }

  function init() {
    CL.map.addLayer("arealayer", traces);
    const redraw = () => CL.map.draw(CL.query()).catch((e) => { if (e.message !== "401") $("al-note").textContent = e.message; });
    $("al-layer").addEventListener("change", () => { fillPopulation(); redraw(); });
    for (const id of ["al-measure", "al-scheme", "al-pop"]) $(id).addEventListener("change", redraw);
    $("al-layer").addEventListener("focus", load, { once: true });
    const obs = new MutationObserver(() => { if (!$("main").hidden) { obs.disconnect(); load(); } });
    obs.observe($("main"), { attributes: true, attributeFilter: ["hidden"] });
    if (!$("main").hidden) load();
  }

  CL.arealayers = { load, rows: () => A.rows };
  document.addEventListener("DOMContentLoaded", init);
})(window.CL);
