/* The "Live" panel: every event of GET /events (incidents, alerts, feed items, jobs) as it arrives,
   newest first, with its kind, time and category. It subscribes to the page's one reader of the
   stream (CL.events, core.js), which reconnects with Last-Event-ID so nothing is missed or shown twice.
   Points of incident events are offered to the map as the "live" layer (CL.map.addLayer). */
(function (CL) {
  "use strict";
  const MAX_ROWS = 50;
  const L = { points: [] };

  function row(kind, at, category, text) {
    const ul = document.getElementById("live-list");
    if (!ul) return;
    const li = document.createElement("li");
    li.className = "live-" + kind;
    li.dataset.kind = kind;
    const t = document.createElement("time");
    t.textContent = at ? String(at).replace("T", " ").slice(0, 19) : "";
    li.append(kind + " · ", t, " · " + (category || "") + (text ? " · " + text : ""));
    ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > MAX_ROWS) ul.removeChild(ul.lastChild);
  }

  function show(ev, data) {
    if (ev === "incidents") {
      for (const i of data.items || []) {
        row("incident", i.occurred_at, i.category, i.area || "");
        if (i.lat != null && i.lon != null) L.points.push({ lat: i.lat, lon: i.lon, category: i.category });
      }
      L.points = L.points.slice(-500);
    } else if (ev === "alert") {
      const a = data.alert || {};
      row("alert", a.raised_at || a.at || data.at, a.category || a.rule || "", a.rule || "");
    } else if (ev.startsWith("feed")) {
      for (const i of data.items || [data]) row("feed", i.published_at || i.published || i.at, i.crime_type || i.category || "", i.source || "");
    } else {
      row(ev, data.at || new Date().toISOString(), data.kind || data.name || "", "");
    }
    const n = document.getElementById("live-note");
    if (n) n.textContent = "Connected; last event " + CL.events.lastId() + ".";
  }

  function status(up, held) {
    const n = document.getElementById("live-note");
    if (n) n.textContent = up ? "Connected." : (held ? "Disconnected." : "Reconnecting…");
  }

  const E = CL.events;
  CL.live = { drop: E.drop, resume: E.resume, points: () => L.points, lastId: E.lastId, connected: E.connected };
  E.subscribe(show);
  E.watch(status);
  document.addEventListener("DOMContentLoaded", () => {
    if (CL.map && CL.map.addLayer) CL.map.addLayer("live", () => (L.points.length ? [{ type: "scatter", mode: "markers",
      x: L.points.map((q) => q.lon), y: L.points.map((q) => q.lat), name: "live", hoverinfo: "text",
      text: L.points.map((q) => q.category), marker: { size: 8, symbol: "diamond", color: "#c2185b" } }] : []));
  });
})(window.CL);
