/* The map: basemap tiles, incident density (or its change against the same period last year),
   Gi* hot spots, forecast cells, area outlines and a server-classified choropleth. Every class
   list is drawn and listed lowest (or hottest) first, in one fixed order. Clicking a cell, hot
   spot or area opens the drill-down panel. Layers of many polygons (density, change, hot spots,
   a grid choropleth) are one picture under the traces (raster.js), with one legend entry per
   class; a click there is placed on the polygon under the pointer. */
"use strict";
(function (CL) {
  const $ = CL.$;
  const S = CL.SCHEMES;
  const HOT_ORDER = ["hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99"];
  const HOT_LABEL = ["Hot spot, 99%", "Hot spot, 95%", "Hot spot, 90%", "Not significant", "Cold spot, 90%",
    "Cold spot, 95%", "Cold spot, 99%"];
  const CHANGE_LABEL = ["much fewer", "fewer", "slightly fewer", "slightly more", "more", "much more"];
  const M = { population: null, box: null, rows: [], legend: [], compare: null, seq: 0, raster: [], index: null };
  const ORDER = { choropleth: 0, density: 1, hotspots: 2 };  // how the picture stacks the layers

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

  // Legend groups in one fixed order, whichever layer's answer arrives first: choropleth, cells,
  // hot spots, forecast, outlines.
  const RANKS = [["incidents per cell", 200], ["change vs", 200], ["Gi*", 300], ["forecast", 400], ["areas", 500]];
  const rankOf = (group) => (RANKS.find((r) => group.startsWith(r[0])) || ["", 100])[1];

  /** One filled trace per class, in class order (legendrank), so the legend reads in order. */
  function classTraces(ctx, feats, classOf, colours, labels, group, opacity, line) {
    const by = colours.map(() => ({ x: [], y: [] }));
    for (const f of feats) {
      const k = classOf(f);
      if (k === null || k < 0 || k >= colours.length) continue;
      for (const p of ring(f)) { by[k].x.push(p[0]); by[k].y.push(p[1]); }
      by[k].x.push(null); by[k].y.push(null);
    }
    ctx.legend.push({ group: group, rank: rankOf(group), classes: labels.map((l, i) => ({ label: l, colour: colours[i], n: by[i].x.length })) });
    return by.map((g, i) => ({ type: "scatter", mode: "lines", fill: "toself", x: g.x, y: g.y, fillcolor: colours[i],
      opacity: opacity, line: { color: line || "rgba(60,60,60,0.5)", width: 0.5 }, name: labels[i],
      legendgroup: group, legendgrouptitle: { text: group }, legendrank: rankOf(group) + i, hoverinfo: "skip",
      showlegend: g.x.length > 0 }));
  }

  /** Polygons of one layer for the map's picture, by class, with an empty legend trace per class
      (in class order, so the legend reads in order; hiding one in the legend hides its class in
      the picture). ``what``/``text``: what a click on a polygon drills into, and its hover text. */
  function rasterTraces(ctx, layer, feats, classOf, colours, labels, group, opacity, what, text) {
    const polys = [], n = colours.map(() => 0);
    for (const f of feats) {
      const k = classOf(f);
      if (k === null || k < 0 || k >= colours.length) continue;
      polys.push({ rings: [ring(f)], k: k });
      n[k] += 1;
    }
    if (what) ctx.clicks.push(...feats.map((f) => ({ rings: [ring(f)], what: what(f), label: text(f) })));
    ctx.raster.push({ layer: layer, polys: polys, colours: colours, opacity: opacity, line: "rgba(60,60,60,0.5)" });
    ctx.legend.push({ group: group, rank: rankOf(group), classes: labels.map((l, i) => ({ label: l, colour: colours[i], n: n[i] })) });
    return labels.map((l, i) => ({ type: "scatter", mode: "markers", x: [null], y: [null], name: l,
      marker: { symbol: "square", size: 12, color: colours[i], opacity: opacity, line: { color: "rgba(60,60,60,0.5)", width: 0.5 } },
      legendgroup: group, legendgrouptitle: { text: group }, legendrank: rankOf(group) + i, hoverinfo: "skip",
      showlegend: n[i] > 0, meta: { raster: layer, k: i } }));
  }

  /** Invisible markers at unit centres carrying what a click drills into. */
  function clickTrace(feats, what, text) {
    const c = feats.map(centre);
    return { type: "scatter", mode: "markers", x: c.map((p) => p[0]), y: c.map((p) => p[1]), showlegend: false,
      marker: { size: 12, opacity: 0.01, color: "#000" }, customdata: feats.map(what), text: feats.map(text),
      hovertemplate: "%{text}<br>click for the incidents<extra></extra>", name: "click" };
  }

  const cellsOf = (p) => CL.cached("/aggregates/cells?" + p + "&cell_m=500");
  const cellKey = (f) => ring(f)[0].map((v) => v.toFixed(5)).join(",");

  async function densityLayer(ctx, p, cellP) {
    const cell = await cellP;
    if (!$("t-compare").checked) {
      const q = quantiles(cell.features.map((f) => f.properties.count), 5);
      ctx.rows.push(...cell.features.map((f) => ({ layer: "density", value: f.properties.count, lon: centre(f)[0], lat: centre(f)[1] })));
      return rasterTraces(ctx, "density", cell.features, (f) => q.of(f.properties.count), S.density, q.labels, "incidents per cell", 0.7);
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
    ctx.compare = { now: now, then: then, from: ly.from, to: ly.to };
    ctx.rows.push(...changed.map((x) => ({ layer: "change vs last year", value: x[1], lon: centre(x[0])[0], lat: centre(x[0])[1] })));
    const shaped = changed.map((x) => Object.assign({}, x[0], { d: x[1] }));
    return rasterTraces(ctx, "density", shaped, (f) => cls(f.d), S.change, CHANGE_LABEL, "change vs same period last year", 0.75);
  }

  async function hotspotLayer(ctx, p) {
    const hs = await CL.cached("/hotspots?" + p);
    ctx.rows.push(...hs.features.map((f) => ({ layer: "hot spots", value: f.properties.class, lon: centre(f)[0], lat: centre(f)[1] })));
    return rasterTraces(ctx, "hotspots", hs.features, (f) => HOT_ORDER.indexOf(f.properties.class), S.hot, HOT_LABEL, "Gi* hot spots", 0.85,
      (f) => ({ box: bbox(f), title: "Hot spot (" + f.properties.class + ")" }), (f) => "hot spot: " + f.properties.class);
  }

  async function forecastLayer(ctx, p) {
    const models = await CL.cached("/forecasts");
    if (!models.length) return [];
    // A surface does not depend on the slider's dates (the fallback is always the last 28 days), so
    // one answer serves every week.
    const q = new URLSearchParams(p);
    q.delete("from"); q.delete("to");
    const fc = await CL.cached("/forecasts/" + encodeURIComponent(models[0].name) + "?" + q);
    const t = classTraces(ctx, fc.features, () => 0, ["rgba(0,0,0,0)"], ["top cells: " + fc.model], "forecast", 1, "#542788");
    t[0].line.width = 1.5;
    return t;
  }

  async function outlineLayer(ctx, p) {
    const col = $("f-area-col").value;
    const ar = await CL.cached("/aggregates/outlines?" + p + "&column=" + col);
    const t = classTraces(ctx, ar.features, () => 0, ["rgba(0,0,0,0)"], [col + " outlines"], "areas", 1, "#333");
    return t.concat([clickTrace(ar.features, (f) => ({ area: col + ":" + f.properties.area, title: col + " " + f.properties.area }),
      (f) => col + " " + f.properties.area + ": " + f.properties.count)]);
  }

  async function choroplethLayer(ctx, p) {
    const layer = $("c-layer").value;
    const body = { layer: layer, measure: $("c-measure").value, scheme: $("c-scheme").value, k: 5, cell_m: 500,
      population: M.population || [] };
    const d = await CL.api("/choropleth?" + p, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    const unit = d.parameters.units || "incidents";
    ctx.rows.push(...d.features.map((f) => ({ layer: "choropleth " + layer, area: f.properties.area, value: f.properties.value,
      class: f.properties.class, lon: centre(f)[0], lat: centre(f)[1] })));
    const group = layer + ": " + unit + " (" + $("c-scheme").value.replace("_", " ") + ")";
    const text = (f) => f.properties.area + ": " + CL.fmt(f.properties.value, 2);
    if (layer === "grid") {  // many cells: in the picture, a click placed on the cell under the pointer
      return rasterTraces(ctx, "choropleth", d.features, (f) => f.properties.class - 1, S.choropleth.slice(0, d.legend.length),
        d.legend.map((c) => c.label), group, 0.7, (f) => ({ box: bbox(f), title: "Grid " + f.properties.area }), text);
    }
    const traces = classTraces(ctx, d.features, (f) => f.properties.class - 1, S.choropleth.slice(0, d.legend.length),
      d.legend.map((c) => c.label), group, 0.7);
    return traces.concat([clickTrace(d.features, (f) => ({ area: layer + ":" + f.properties.area, title: layer + " " + f.properties.area }), text)]);
  }

  function drawLegend() {
    const ol = $("map-legend");
    ol.replaceChildren();
    for (const g of M.legend.slice().sort((a, b) => a.rank - b.rank)) {
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

  /** Classes hidden from the legend (clicked off), per raster layer. */
  function hiddenClasses(gd) {
    const out = {};
    for (const t of gd.data || []) {
      if (t.meta && t.meta.raster && t.visible === "legendonly") (out[t.meta.raster] = out[t.meta.raster] || new Set()).add(t.meta.k);
    }
    return out;
  }

  /** The picture of the raster layers for the view ``view`` (default: their whole extent), at the
      plot's current scale. */
  function picture(gd, view) {
    const xa = gd._fullLayout && gd._fullLayout.xaxis;
    const box = M.box || { west: -1, east: 1, south: -1, north: 1 };
    const perDeg = xa && xa._length && xa.range ? xa._length / Math.abs(xa.range[1] - xa.range[0])
      : Math.max(300, (gd.clientWidth || 800) - 300) / (box.east - box.west);
    const ratio = 1 / Math.cos((box.south + box.north) / 2 * Math.PI / 180);
    const hidden = hiddenClasses(gd);
    const layers = M.raster.slice().sort((a, b) => ORDER[a.layer] - ORDER[b.layer])
      .map((l) => Object.assign({}, l, { hidden: hidden[l.layer] }));
    return CL.raster.picture(layers, perDeg, ratio, view);
  }

  const visible = (gd) => CL.basemap.view(gd);

  /** What a click drills into: a marker's own, else the polygon under the pointer. */
  function clicked(gd, ev) {
    const pts = ev.points || [];
    const mark = pts.find((q) => q.customdata && q.data && q.data.name === "click");
    if (mark) return mark.customdata;
    const hit = pts.find((q) => q.data && q.data.name === "hit");
    if (!hit || !M.index) return null;
    let x = hit.x, y = hit.y;
    const e = ev.event, drag = gd.querySelector(".nsewdrag");
    if (e && e.clientX !== undefined && drag) {
      const r = drag.getBoundingClientRect();
      x = gd._fullLayout.xaxis.p2l(e.clientX - r.left); y = gd._fullLayout.yaxis.p2l(e.clientY - r.top);
    }
    const it = M.index.at(x, y);
    return it ? it.what : null;
  }

  function listen(gd) {
    if (gd.dataset.clicks) return;
    gd.dataset.clicks = "1";
    gd.on("plotly_click", (ev) => {
      const c = clicked(gd, ev);
      if (!c) return;
      const params = CL.query();
      if (c.area) params.append("area", c.area);
      CL.drill.open({ title: c.title + " · " + CL.period().label, params: params, box: c.box });
    });
    gd.on("plotly_restyle", (ev) => {  // a class clicked off (or on) in the legend: redraw the picture
      const idx = ev && ev[1] ? ev[1] : [];
      if (!idx.some((i) => gd.data[i] && gd.data[i].meta && gd.data[i].meta.raster)) return;
      Plotly.relayout(gd, { images: withPicture(gd, gd.layout.images || [], visible(gd)) });
    });
  }

  /** ``images`` with the picture replaced by a fresh one. */
  function withPicture(gd, images, view) {
    const pic = picture(gd, view);
    return images.filter((i) => i.name !== "cells").concat(pic ? [pic] : []);
  }

  async function draw(p) {
    const seq = ++M.seq;
    const want = (id) => $(id).checked;
    // what the layers add, kept apart per draw (a draw still waiting on answers when a newer one
    // starts must not add to the newer one's)
    const ctx = { rows: [], legend: [], raster: [], clicks: [], compare: null };
    const cellP = cellsOf(p);  // fetched beside the layers, not before them
    const parts = await Promise.all([
      cellP,
      $("c-layer").value ? choroplethLayer(ctx, p) : Promise.resolve([]),
      want("l-areas") ? outlineLayer(ctx, p) : Promise.resolve([]),
      want("l-density") ? densityLayer(ctx, p, cellP) : Promise.resolve([]),
      want("l-hotspots") ? hotspotLayer(ctx, p) : Promise.resolve([]),
      want("l-forecast") ? forecastLayer(ctx, p) : Promise.resolve([]),
      ...Object.values(EXTRA).map((fn) => fn(p)),
    ]);
    if (seq !== M.seq) return;  // a newer draw started meanwhile
    M.rows = ctx.rows; M.legend = ctx.legend; M.compare = ctx.compare; M.raster = ctx.raster;
    const clicks = ctx.clicks;
    const cell = parts.shift();
    const traces = [].concat(...parts);
    // every cell is clickable (density shown or not); hot spots and grid cells were added by their layers
    clicks.push(...cell.features.map((f) => ({ rings: [ring(f)], what: { box: bbox(f), title: "Cell of 500 m with " +
      f.properties.count + " incidents" }, label: f.properties.count + " incidents" })));
    M.index = CL.raster.index(clicks);
    const hit = CL.raster.hitTrace(M.index);
    if (hit) traces.push(hit);
    if (!M.box && cell.features.length) {
      const bs = cell.features.map(bbox);
      M.box = { west: Math.min(...bs.map((b) => b.west)), east: Math.max(...bs.map((b) => b.east)),
        south: Math.min(...bs.map((b) => b.south)), north: Math.max(...bs.map((b) => b.north)) };
    }
    const box = M.box || { west: -1, east: 1, south: -1, north: 1 };
    const lat0 = (box.south + box.north) / 2;
    const gd = $("map");
    const view = gd._fullLayout && gd._fullLayout.xaxis && gd.layout.images ? visible(gd) : null;
    const xr = view ? [view.west, view.east] : [box.west, box.east], yr = view ? [view.south, view.north] : [box.south, box.north];
    const layout = { margin: { l: 50, r: 10, t: 10, b: 40 }, showlegend: true, uirevision: "map",
      legend: { x: 1.02, y: 1, font: { size: 11 }, traceorder: "grouped", groupclick: "toggleitem" },
      xaxis: { title: "longitude", showgrid: false, range: [box.west, box.east] }, paper_bgcolor: "#fff", plot_bgcolor: "#eef1f4",
      yaxis: { title: "latitude", showgrid: false, range: [box.south, box.north], scaleanchor: "x",
        scaleratio: 1 / Math.cos(lat0 * Math.PI / 180) },
      images: withPicture(gd, CL.basemap.images(xr, yr, gd.clientWidth || 800), view) };
    await Plotly.react(gd, traces, layout, CL.CONFIG);
    CL.basemap.follow(gd, (v) => withPicture(gd, [], v));
    listen(gd);
    drawLegend();
    const cmp = M.compare ? " This period: " + M.compare.now + " incidents; same period last year (" + M.compare.from +
      " to " + M.compare.to + "): " + M.compare.then + (M.compare.then ? " (" + (M.compare.now >= M.compare.then ? "+" : "") +
      CL.fmt(100 * (M.compare.now - M.compare.then) / M.compare.then, 1) + "%)." : ".") : "";
    $("map-note").textContent = cell.features.length + " cells of " + cell.parameters.cell_size_m + " m · " + CL.period().label +
      "; hot spots: Getis-Ord Gi* with FDR; " + (CL.basemap.enabled ? "basemap: " + (CL.basemap.attribution || "tiles") : "no basemap configured") +
      "." + cmp + ($("t-compare").checked && !M.compare ? " Comparison needs a time window (choose one beside the slider)." : "");
  }

  /** Ask ahead for the per-period answers of query ``p`` (cells, and hot spots when shown). */
  function prefetch(p) {
    const got = [cellsOf(p)];
    if ($("l-hotspots").checked) got.push(CL.cached("/hotspots?" + p));
    return got;
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

  CL.map = { draw, prefetch, readPopulation, addLayer, rows: () => M.rows, legend: () => M.legend,
    clickables: () => (M.index ? M.index.items.map((it) => ({ lon: it.cx, lat: it.cy, what: it.what, label: it.label })) : []) };
})(window.CL);
