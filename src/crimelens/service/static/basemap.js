/* Basemap tiles under the map: the XYZ (or WMTS) tiles covering the visible longitude/latitude
   range, laid as Plotly layout images below the traces. Tiles come from this server
   (/tiles/{z}/{x}/{y}.png, from an MBTiles file) or the admin's tile URL (allowed by the CSP). */
"use strict";
(function (CL) {
  const b = document.body.dataset;
  const url = b.tileUrl || "";
  const bounds = (b.tileBounds || "").split(",").filter((v) => v !== "").map(Number);
  const minZ = Number(b.tileMinzoom || 0), maxZ = Number(b.tileMaxzoom || 19);
  const MAX_TILES = 64;

  const lon2x = (lon, z) => (lon + 180) / 360 * Math.pow(2, z);
  const lat2y = (lat, z) => {
    const r = Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI / 180;
    return (1 - Math.asinh(Math.tan(r)) / Math.PI) / 2 * Math.pow(2, z);
  };
  const x2lon = (x, z) => x / Math.pow(2, z) * 360 - 180;
  const y2lat = (y, z) => Math.atan(Math.sinh(Math.PI * (1 - 2 * y / Math.pow(2, z)))) * 180 / Math.PI;

  function tileUrl(z, x, y) {
    return url.replace("{z}", z).replace("{x}", x).replace("{y}", y)
      .replace("{TileMatrix}", z).replace("{TileCol}", x).replace("{TileRow}", y);
  }

  /** Layout images for the tiles covering [west, east] × [south, north] on a plot ``px`` wide. */
  function images(xr, yr, px) {
    if (!url || !(xr[1] > xr[0]) || !(yr[1] > yr[0])) return [];
    let z = Math.round(Math.log2(360 / (xr[1] - xr[0]) * Math.max(256, px) / 256));
    z = Math.max(minZ, Math.min(maxZ, z));
    let west = xr[0], east = xr[1], south = yr[0], north = yr[1];
    if (bounds.length === 4) {
      west = Math.max(west, bounds[0]); south = Math.max(south, bounds[1]);
      east = Math.min(east, bounds[2]); north = Math.min(north, bounds[3]);
      if (!(east > west && north > south)) return [];
    }
    for (;;) {
      const n = (Math.floor(lon2x(east, z)) - Math.floor(lon2x(west, z)) + 1) *
        (Math.floor(lat2y(south, z)) - Math.floor(lat2y(north, z)) + 1);
      if (n <= MAX_TILES || z <= minZ) break;
      z -= 1;
    }
    const out = [];
    for (let x = Math.floor(lon2x(west, z)); x <= Math.floor(lon2x(east, z)); x++) {
      for (let y = Math.floor(lat2y(north, z)); y <= Math.floor(lat2y(south, z)); y++) {
        const w = x2lon(x, z), e = x2lon(x + 1, z), n = y2lat(y, z), s = y2lat(y + 1, z);
        out.push({ source: tileUrl(z, x, y), xref: "x", yref: "y", x: w, y: n, sizex: e - w, sizey: n - s,
          sizing: "stretch", xanchor: "left", yanchor: "top", layer: "below", opacity: 1 });
      }
    }
    return out;
  }

  /** The plot's visible longitude/latitude box. */
  function view(gd) {
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    return { west: Math.min(...xa.range), east: Math.max(...xa.range), south: Math.min(...ya.range), north: Math.max(...ya.range) };
  }

  /** Keep the tiles matched to the view as the user zooms and pans; ``more(view)`` gives the other
      layout images for the new view (the map's picture of its cells), laid above the tiles. */
  function follow(gd, more) {
    gd.tilesMore = more;
    if (gd.dataset.tilesFollow) return;
    gd.dataset.tilesFollow = "1";
    gd.on("plotly_relayout", (ev) => {
      if (!Object.keys(ev).some((k) => k.startsWith("xaxis") || k.startsWith("yaxis"))) return;
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
      Plotly.relayout(gd, { images: images(xa.range, ya.range, xa._length).concat(gd.tilesMore ? gd.tilesMore(view(gd)) : []) });
    });
  }

  CL.basemap = { enabled: !!url, images, follow, view, attribution: b.tileAttribution || "" };
})(window.CL);
