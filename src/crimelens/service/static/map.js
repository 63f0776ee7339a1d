/* The map: basemap tiles, incident density (or its change against the same period last year),
   Gi* hot spots, forecast cells, area outlines and a server-classified choropleth. Every class
   list is drawn and listed lowest (or hottest) first, in one fixed order. Clicking a cell, hot
   spot or area opens the drill-down panel. */
"use strict";
(function (CL) {
  const $ = CL.$;
  const S = CL.SCHEMES;
  const HOT_ORDER = ["hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"];
  const HOT_LABEL = ["Hot spot, 99%", "Hot spot, 95%", "Hot spot, 90%", "Not significant", "Cold spot, 90%",
    "Cold spot, 95%", "Cold spot, 99%"];
  const CHANGE_LABEL = ["much fewer", "fewer", "slightly fewer", "slightly more", "more", "much more"];
  const M = { population: null, box: null, rows: [], legend: [], seq: 0 };

  const ring = (f) => f.geometry.coordinates[0];
  function bbox(f) {
    const r = ring(f);
    let w = Infinity, s = Infinity, e = -Infinity, n = -Infinity;
    for (const p of r) { w = Math.min(w, p[0]); e = Math.max(e, p[0]); s = Math.min(s, p[1]); n = Math.max(n, p[1]); }
    return { west: w, south: s, east: e, north: n };
  }
  const centre = (f) => { const b = bbox(f); return [(b.west + b.east) / 2, (b.south + b.north) / 2]; };

  /** Quantile class (0 … n-1) of each value, lowest first. */
  function quantiles(values, n) {
    const s = values.slice().sort((a, b) => a - b);
    const cuts = [];
    for (let i = 1; i < n; i++) cuts.push(s[Math.floor(i * (s.length - 1) / n)]);
    return { of: (v) => { let k = 0; cuts.forEach((c, i) => { if (v > c) k = i + 1; }); return k; },
      labels: Array.from({ length: n }, (_, i) => (i === 0 ? "≤ " + CL.fmt(cuts[0]) : i === n - 1 ? "> " +
        CL.fmt(cuts[n - 2]) : CL.fmt(cuts[i - 1]) + " – " + CL.fmt(cuts[i]))) };
  }

  /** One filled trace per class, in class order (legendrank), so the legend reads in order. */
  function classTraces(feats, classOf, colours, labels, group, opacity, line) {
    const by = colours.map(() => ({ x: [], y: [] }));
    for (const f of feats) {
      const k = classOf(f);
      if (k === null || k < 0 || k >= colours.length) continue;
      for (const p of ring(f)) { by[k].x.push(p[0]); by[k].y.push(p[1]); }
      by[k].x.push(null); by[k].y.push(null);
    }
    M.legend.push({ group: group, classes: labels.map((l, i) => ({ label: l, colour: colours[i], n: by[i].x.length })) });
    return by.map((g, i) => ({ type: "scatter", mode: "lines", fill: "toself", x: g.x, y: g.y, fillcolor: colours[i],
      opacity: opacity, line: { color: line || "rgba(60,60,60,0.5)", width: 0.5 }, name: labels[i],
      legendgroup: group, legendgrouptitle: { text: group }, legendrank: 100 * M.legend.length + i, hoverinfo: "skip",
      showlegend: g.x.length > 0 }));
  }

  /** Invisible markers at unit centres carrying what a click drills into. */
  function clickTrace(feats, what, text) {
    const c = feats.map(centre);
    return { type: "scatter", mode: "markers", x: c.map((p) => p[0]), y: c.map((p) => p[1]), showlegend: false,
      marker: { size: 12, opacity: 0.01, color: "#000" }, customdata: feats.map(what), text: feats.map(text),
      hovertemplate: "%{text}<br>click for the incidents<extra></extra>", name: "click" };
  }

  const cellKey = (f) => ring(f)[0].map((v) => v.toFixed(5)).join(",");

  async function densityLayer(p, cellP) {
    const cell = await cellP;
    if (!$("t-compare").checked) {
      const q = quantiles(cell.features.map((f) => f.properties.count), 5);
      M.rows.push(...cell.features.map((f) => ({ layer: "density", value: f.properties.count, lon: centre(f)[0], lat: centre(f)[1] })));
      return classTraces(cell.features, (f) => q.of(f.properties.count), S.density, q.labels, "incidents per cell", 0.7);
    }
    const per = CL.period();
    if (!per.from || !per.to) { $("map-note").dataset.compare = "needs a window"; return []; }
    const ly = CL.lastYear(per);
    const prev = await CL.cached("/aggregates/cells?" + CL.filterParams(ly) + "&cell_m=500");
    const before = new Map(prev.features.map((f) => [cellKey(f), f]));
    const feats = [];
    for (const f of cell.features) { const b = before.get(cellKey(f)); feats.push([f, f.properties.count - (b ? b.properties.count : 0)]); before.delete(cellKey(f)); }
    for (const f of before.values()) feats.push([f, -f.properties.count]);
    const changed = feats.filter((x) => x[1] !== 0);
    const top = Math.max(1, ...changed.map((x) => Math.abs(x[1])));
    const cls = (d) => d < 0 ? (d <= -2 * top / 3 ? 0 : d <= -top / 3 ? 1 : 2) : (d >= 2 * top / 3 ? 5 : d >= top / 3 ? 4 : 3);
    const now = cell.features.reduce((a, f) => a + f.properties.count, 0);
    const then = prev.features.reduce((a, f) => a + f.properties.count, 0);
    M.compare = { now: now, then: then, from: ly.from, to: ly.to };
    M.rows.push(...changed.map((x) => ({ layer: "change vs last year", value: x[1], lon: centre(x[0])[0], lat: centre(x[0])[1] })));
    const shaped = changed.map((x) => Object.assign({}, x[0], { d: x[1] }));
    return classTraces(shaped, (f) => cls(f.d), S.change, CHANGE_LABEL, "change vs same period last year", 0.75);
  }

  async function hotspotLayer(p) {
    const hs = await CL.cached("/hotspots?" + p);
    M.rows.push(...hs.features.map((f) => ({ layer: "hot spots", value: f.properties.class, lon: centre(f)[0], lat: centre(f)[1] })));
    const traces = classTraces(hs.features, (f) => HOT_ORDER.indexOf(f.properties.class), S.hot, HOT_LABEL, "Gi* hot spots", 0.85);
    return traces.concat([clickTrace(hs.features, (f) => ({ box: bbox(f), title: "Hot spot (" + f.properties.class + ")" }),
      (f) => "hot spot: " + f.properties.class)]);
  }

  async function forecastLayer(p) {
    const models = await CL.cached("/forecasts");
    if (!models.length) return [];
    const fc = await CL.cached("/forecasts/" + encodeURIComponent(models[0].name) + "?" + p);
    const t = classTraces(fc.features, () => 0, ["rgba(0,0,0,0)"], ["top cells: " + fc.model], "forecast", 1, "#542788");
    t[0].line.width = 1.5;
    return t;
  }

  async function outlineLayer(p) {
    const col = $("f-area-col").value;
    const ar = await CL.cached("/aggregates/outlines?" + p + "&column=" + col);
    const t = classTraces(ar.features, () => 0, ["rgba(0,0,0,0)"], [col + " outlines"], "areas", 1, "#333");
    return t.concat([clickTrace(ar.features, (f) => ({ area: col + ":" + f.properties.area, title: col + " " + f.properties.area }),
      (f) => col + " " + f.properties.area + ": " + f.properties.count)]);
  }

  async function choroplethLayer(p) {
    const layer = $("c-layer").value;
    const body = { layer: layer, measure: $("c-measure").value, scheme: $("c-scheme").value, k: 5, cell_m: 500,
      population: M.population || [] };
    const d = await CL.api("/choropleth?" + p, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const unit = d.parameters.units || "incidents";
    M.rows.push(...d.features.map((f) => ({ layer: "choropleth " + layer, area: f.properties.area, value: f.properties.value,
      class: f.properties.class, lon: centre(f)[0], lat: centre(f)[1] })));
    const traces = classTraces(d.features, (f) => f.properties.class - 1, S.choropleth.slice(0, d.legend.length),
      d.legend.map((c) => c.label), layer + ": " + unit + " (" + $("c-scheme").value.replace("_", " ") + ")", 0.7);
    const what = layer === "grid" ? (f) => ({ box: bbox(f), title: "Grid " + f.properties.area })
      : (f) => ({ area: layer + ":" + f.properties.area, title: layer + " " + f.properties.area });
    return traces.concat([clickTrace(d.features, what, (f) => f.properties.area + ": " + CL.fmt(f.properties.value, 2))]);
  }

  function drawLegend() {
    const ol = $("map-legend");
    ol.replaceChildren();
    for (const g of M.legend) {
      if (g.classes.length < 2) continue;
      const li = document.createElement("li"); li.className = "group"; li.textContent = g.group;
      const inner = document.createElement("ol");
      g.classes.forEach((c, i) => {
        const it = document.createElement("li"); it.dataset.cls = String(i + 1);
        const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = c.colour;
        sw.setAttribute("aria-hidden", "true");
        it.append(sw, c.label);
        inner.appendChild(it);
      });
      li.appendChild(inner); ol.appendChild(li);
    }
  }

  async function draw(p) {
    const seq = ++M.seq;
    const want = (id) => $(id).checked;
    M.rows = []; M.legend = []; M.compare = null;
    const cellP = CL.cached("/aggregates/cells?" + p + "&cell_m=500");  // fetched beside the layers, not before them
    const parts = await Promise.all([
      cellP,
      $("c-layer").value ? choroplethLayer(p) : Promise.resolve([]),
      want("l-areas") ? outlineLayer(p) : Promise.resolve([]),
      want("l-density") ? densityLayer(p, cellP) : Promise.resolve([]),
      want("l-hotspots") ? hotspotLayer(p) : Promise.resolve([]),
      want("l-forecast") ? forecastLayer(p) : Promise.resolve([]),
      ...Object.values(EXTRA).map((fn) => fn(p)),
    ]);
    if (seq !== M.seq) return;  // a newer draw started meanwhile
    const cell = parts.shift();
    const traces = [].concat(...parts);
    const cellClick = clickTrace(cell.features, (f) => ({ box: bbox(f), title: "Cell of 500 m with " + f.properties.count + " incidents" }),
      (f) => f.properties.count + " incidents");
    traces.push(cellClick);
    if (!M.box && cell.features.length) {
      const bs = cell.features.map(bbox);
      M.box = { west: Math.min(...bs.map((b) => b.west)), east: Math.max(...bs.map((b) => b.east)),
        south: Math.min(...bs.map((b) => b.south)), north: Math.max(...bs.map((b) => b.north)) };
    }
    const box = M.box || { west: -1, east: 1, south: -1, north: 1 };
    const lat0 = (box.south + box.north) / 2;
    const gd = $("map");
    const layout = { margin: { l: 50, r: 10, t: 10, b: 40 }, showlegend: true, uirevision: "map",
      legend: { x: 1.02, y: 1, font: { size: 11 }, traceorder: "grouped", groupclick: "toggleitem" },
      xaxis: { title: "longitude", showgrid: false, range: [box.west, box.east] }, paper_bgcolor: "#fff", plot_bgcolor: "#eef1f4",
      yaxis: { title: "latitude", showgrid: false, range: [box.south, box.north], scaleanchor: "x",
        scaleratio: 1 / Math.cos(lat0 * Math.PI / 180) },
      images: CL.basemap.images([box.west, box.east], [box.south, box.north], gd.clientWidth || 800) };
    await Plotly.react(gd, traces, layout, CL.CONFIG);
    CL.basemap.follow(gd);
    if (!gd.dataset.clicks) {
      gd.dataset.clicks = "1";
      gd.on("plotly_click", (ev) => {
        const pt = ev.points && ev.points.find((q) => q.customdata);
        if (!pt) return;
        const c = pt.customdata;
        const params = CL.query();
        if (c.area) params.append("area", c.area);
        CL.drill.open({ title: c.title + " · " + CL.period().label, params: params, box: c.box });
      });
    }
    drawLegend();
    const cmp = M.compare ? " This period: " + M.compare.now + " incidents; same period last year (" + M.compare.from +
      " to " + M.compare.to + "): " + M.compare.then + (M.compare.then ? " (" + (M.compare.now >= M.compare.then ? "+" : "") +
      CL.fmt(100 * (M.compare.now - M.compare.then) / M.compare.then, 1) + "%)." : ".") : "";
    $("map-note").textContent = cell.features.length + " cells of " + cell.parameters.cell_size_m + " m · " + CL.period().label +
      "; hot spots: Getis-Ord Gi* with FDR; " + (CL.basemap.enabled ? "basemap: " + (CL.basemap.attribution || "tiles") : "no basemap configured") +
      "." + cmp + ($("t-compare").checked && !M.compare ? " Comparison needs a time window (choose one beside the slider)." : "");
  }

  function readPopulation(file) {
    return file.text().then((text) => {
      const rows = [];
      for (const line of text.split(/\r?\n/).slice(1)) {
        const [area, pop] = line.split(",").map((v) => (v || "").trim().replace(/^"|"$/g, ""));
        if (area && Number(pop) > 0) rows.push({ area: area, population: Number(pop) });
      }
      M.population = rows;
      return rows.length;
    });
  }

  /** Layers other scripts add (arealayers.js): name -> async (query) => traces, drawn on every redraw. */
  const EXTRA = {};
  function addLayer(name, fn) { EXTRA[name] = fn; }

  CL.map = { draw, readPopulation, addLayer, rows: () => M.rows, legend: () => M.legend };
})(window.CL);
