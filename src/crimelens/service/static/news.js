/* The "News" map layer: items of the followed RSS/Atom feeds (crimelens feeds sync) that the text
   pipeline placed, from GET /feeds/items, drawn as open stars apart from every incident layer with
   the legend entry "News items (not police records)" (click it to hide or show the layer). Hover
   shows the title, the place and its precision (block, street or area). Items published later
   arrive on the live stream as "feed" events (CL.events, core.js) and are added without a reload. */
(function (CL) {
  "use strict";
  const LABEL = "News items (not police records)";
  const N = { items: new Map() };  // id -> item (located or not), from the API and the stream

  function keep(items) {
    let added = 0;
    for (const i of items || []) {
      if (!i || !i.id) continue;
      if (!N.items.has(i.id)) added++;
      N.items.set(i.id, i);
    }
    return added;
  }

  const located = () => [...N.items.values()].filter((i) => i.lat != null && i.lon != null);

  function hover(i) {
    const esc = (s) => String(s == null ? "" : s).replace(/[<>&]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;" }[c]));
    return esc(i.title) + "<br>" + esc(i.place || "no place") + " (" + esc(i.place_precision || "none") + " precision)" +
      (i.feed && i.feed.title ? "<br>" + esc(i.feed.title) : "");
  }

  /** The layer's traces for a redraw: one marker trace of the located items (none when there are none). */
  async function traces() {
    try { keep(await CL.api("/feeds/items?limit=2000")); } catch (e) { /* signed out or no access: what we have */ }
    const pts = located();
    if (!pts.length) return [];
    return [{ type: "scatter", mode: "markers", name: LABEL, legendgroup: "news", legendrank: 950,
      x: pts.map((i) => i.lon), y: pts.map((i) => i.lat), customdata: pts.map((i) => i.id),
      hoverinfo: "text", hovertext: pts.map(hover), meta: { news: true },
      marker: { size: 11, symbol: "star-open", color: "#6a1b9a", line: { width: 1.5 } } }];
  }

  function onEvent(ev, data) {
    if (!ev.startsWith("feed") || !data) return;
    if (keep(data.items) && CL.map && CL.map.draw && CL.query) CL.map.draw(CL.query()).catch(() => {});
  }

  CL.news = { items: () => [...N.items.values()], located: () => located().length };
  if (CL.events) CL.events.subscribe(onEvent);
  document.addEventListener("DOMContentLoaded", () => {
    if (CL.map && CL.map.addLayer) CL.map.addLayer("news", traces);
  });
})(window.CL);
