/* Map layers of many polygons (density cells, change against last year, Gi* hot spots, the
   choropleth) drawn as one picture: every polygon is filled on a canvas, class by class, and the
   canvas is laid under the traces as one layout image (a data: URL, which the PNG export keeps),
   instead of thousands of SVG shapes plus one invisible click marker each. Clicks and hovers are
   mapped back to the polygon under the pointer (an index of polygon boxes), so one transparent
   heatmap trace is the map's click target. */
"use strict";
(function (CL) {
  const MAX_PX = 4096;  // longest side of the picture
  const clear = [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]];

  function boxOf(rings) {
    let w = Infinity, s = Infinity, e = -Infinity, n = -Infinity;
    for (const r of rings) for (const p of r) {
      if (p[0] < w) w = p[0]; if (p[0] > e) e = p[0]; if (p[1] < s) s = p[1]; if (p[1] > n) n = p[1];
    }
    return { west: w, south: s, east: e, north: n };
  }

  /** Whether (x, y) lies inside ``ring`` (even-odd rule, ring as [[lon, lat], ...]). */
  function inside(ring, x, y) {
    let hit = false;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const a = ring[i], b = ring[j];
      if ((a[1] > y) !== (b[1] > y) && x < (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]) + a[0]) hit = !hit;
    }
    return hit;
  }

  /** Polygons to look up by position: ``items`` are {rings, what, label}; ``at(lon, lat)`` gives
      the item under the point whose centre is nearest (so a small cell wins over the area around it,
      as the nearest click marker did). */
  function index(items) {
    const all = items.map((it) => Object.assign({ box: boxOf(it.rings) }, it));
    if (!all.length) return { items: all, at: () => null, bounds: null };
    const ws = all.map((it) => it.box.east - it.box.west).sort((a, b) => a - b);
    const hs = all.map((it) => it.box.north - it.box.south).sort((a, b) => a - b);
    const dx = Math.max(1e-9, ws[ws.length >> 1]), dy = Math.max(1e-9, hs[hs.length >> 1]);
    const bounds = { west: Math.min(...all.map((it) => it.box.west)), east: Math.max(...all.map((it) => it.box.east)),
      south: Math.min(...all.map((it) => it.box.south)), north: Math.max(...all.map((it) => it.box.north)) };
    const buckets = new Map();
    const key = (i, j) => i * 1e6 + j;
    for (const it of all) {
      it.cx = (it.box.west + it.box.east) / 2; it.cy = (it.box.south + it.box.north) / 2;
      const i0 = Math.floor((it.box.west - bounds.west) / dx), i1 = Math.floor((it.box.east - bounds.west) / dx);
      const j0 = Math.floor((it.box.south - bounds.south) / dy), j1 = Math.floor((it.box.north - bounds.south) / dy);
      for (let i = i0; i <= i1; i++) for (let j = j0; j <= j1; j++) {
        const k = key(i, j);
        if (!buckets.has(k)) buckets.set(k, []);
        buckets.get(k).push(it);
      }
    }
    function at(x, y) {
      const got = buckets.get(key(Math.floor((x - bounds.west) / dx), Math.floor((y - bounds.south) / dy)));
      let best = null, bestD = Infinity;
      for (const it of got || []) {
        if (x < it.box.west || x > it.box.east || y < it.box.south || y > it.box.north) continue;
        if (!it.rings.some((r) => inside(r, x, y))) continue;
        const d = (it.cx - x) * (it.cx - x) + (it.cy - y) * (it.cy - y);
        if (d < bestD) { best = it; bestD = d; }
      }
      return best;
    }
    return { items: all, at, bounds, dx, dy };
  }

  /** One transparent heatmap over the indexed polygons: hovering shows the label of the polygon
      under the pointer (to about a cell; the click itself is placed exactly), a click reaches
      CL.map's handler. */
  function hitTrace(ix) {
    if (!ix.bounds) return null;
    const b = ix.bounds, sx = ix.dx, sy = ix.dy;
    const nx = Math.min(400, Math.ceil((b.east - b.west) / sx)), ny = Math.min(400, Math.ceil((b.north - b.south) / sy));
    const stepX = (b.east - b.west) / nx, stepY = (b.north - b.south) / ny;
    const x = Array.from({ length: nx }, (_, i) => b.west + (i + 0.5) * stepX);
    const y = Array.from({ length: ny }, (_, j) => b.south + (j + 0.5) * stepY);
    const z = [], text = [];
    for (const yy of y) {
      const zr = new Array(nx).fill(null), tr = new Array(nx).fill("");
      x.forEach((xx, i) => { const it = ix.at(xx, yy); if (it) { zr[i] = 1; tr[i] = it.label; } });
      z.push(zr); text.push(tr);
    }
    return { type: "heatmap", name: "hit", x: x, y: y, z: z, text: text, colorscale: clear, showscale: false,
      hoverongaps: false, zmin: 0, zmax: 1, showlegend: false, zsmooth: "fast",  // drawn at one pixel a bin, not a plot-sized picture
      hovertemplate: "%{text}<br>click for the incidents<extra></extra>" };
  }

  /** The layers' polygons filled on one canvas covering their extent (clipped to ``view``, the
      visible range, when given) at ``pxPerDeg`` (longitude; latitude scaled by ``ratio``).
      ``layers``: [{polys: [{rings, k}], colours, opacity, line, hidden: Set of class numbers}].
      Returns a layout image (drawn below the traces, above the basemap) or null. */
  function picture(layers, pxPerDeg, ratio, view) {
    const polys = [].concat(...layers.map((l) => l.polys));
    if (!polys.length) return null;
    let b = boxOf([].concat(...polys.map((p) => p.rings)));
    if (view) b = { west: Math.max(b.west, view.west), east: Math.min(b.east, view.east),
      south: Math.max(b.south, view.south), north: Math.min(b.north, view.north) };
    if (!(b.east > b.west && b.north > b.south)) return null;
    let sx = pxPerDeg * (window.devicePixelRatio || 1), sy = sx * ratio;
    const fit = Math.min(1, MAX_PX / ((b.east - b.west) * sx), MAX_PX / ((b.north - b.south) * sy));
    sx *= fit; sy *= fit;
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.ceil((b.east - b.west) * sx));
    canvas.height = Math.max(1, Math.ceil((b.north - b.south) * sy));
    const ctx = canvas.getContext("2d");
    for (const l of layers) {
      ctx.globalAlpha = l.opacity;
      ctx.lineWidth = Math.max(0.5, 0.5 * (window.devicePixelRatio || 1));
      ctx.strokeStyle = l.line;
      l.colours.forEach((colour, k) => {
        if (l.hidden && l.hidden.has(k)) return;
        ctx.beginPath();
        for (const p of l.polys) {
          if (p.k !== k) continue;
          for (const r of p.rings) {
            r.forEach((q, i) => {
              const px = (q[0] - b.west) * sx, py = (b.north - q[1]) * sy;
              if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
            });
            ctx.closePath();
          }
        }
        ctx.fillStyle = colour;
        ctx.fill();
        ctx.stroke();
      });
    }
    return { source: canvas.toDataURL("image/png"), xref: "x", yref: "y", x: b.west, y: b.north,
      sizex: b.east - b.west, sizey: b.north - b.south, sizing: "stretch", xanchor: "left", yanchor: "top",
      layer: "below", opacity: 1, name: "cells" };
  }

  CL.raster = { index, hitTrace, picture, inside };
})(window.CL);
