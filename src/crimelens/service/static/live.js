/* The "Live" panel: every event of GET /events (incidents, alerts, feed items, jobs) as it arrives,
   newest first, with its kind, time and category. The stream is read with fetch (EventSource cannot
   send the bearer token); after a dropped connection it reconnects with growing delay and sends
   Last-Event-ID, so the server replays what was published meanwhile and nothing is missed.
   Points of incident events are offered to the map as the "live" layer (CL.map.addLayer). */
(function (CL) {
  "use strict";
  const MAX_ROWS = 50;
  const L = { lastId: null, abort: null, retryMs: 3000, delay: 500, points: [], seen: new Set(), held: false, connected: false };

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
      for (const i of data.items || [data]) row("feed", i.published || i.at, i.crime_type || i.category || "", i.source || "");
    } else {
      row(ev, data.at || new Date().toISOString(), data.kind || data.name || "", "");
    }
    const n = document.getElementById("live-note");
    if (n) n.textContent = "Connected; last event " + L.lastId + ".";
  }

  function parse(chunk) {
    let ev = "message", data = "", id = null;
    for (const line of chunk.split("\n")) {
      if (line.startsWith("id:")) id = line.slice(3).trim();
      else if (line.startsWith("event:")) ev = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
      else if (line.startsWith("retry:")) L.retryMs = parseInt(line.slice(6), 10) || L.retryMs;
    }
    if (id !== null) {
      if (L.seen.has(id)) return;  // a replayed event already shown
      L.seen.add(id); L.lastId = id;
    }
    if (data) show(ev, JSON.parse(data));
  }

  async function connect() {
    if (!CL.session.token) return;
    L.abort = new AbortController();
    const headers = { Authorization: "Bearer " + CL.session.token };
    if (L.lastId !== null) headers["Last-Event-ID"] = L.lastId;
    try {
      const r = await fetch(CL.API + "/events", { headers, signal: L.abort.signal });
      if (!r.ok || !r.body) throw new Error("live " + r.status);
      L.delay = 500; L.connected = true;
      const n0 = document.getElementById("live-note");
      if (n0) n0.textContent = "Connected.";
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) { parse(buf.slice(0, i)); buf = buf.slice(i + 2); }
      }
    } catch (e) {
      if (!CL.session.token) return;
    }
    L.connected = false;
    const n = document.getElementById("live-note");
    if (n) n.textContent = L.held ? "Disconnected." : "Reconnecting…";
    if (L.held) return;
    L.delay = Math.min(L.delay * 2, L.retryMs * 4);
    setTimeout(connect, L.delay);
  }

  /** Drop the connection; it reconnects on its own (resuming from the last event id), or, with
      ``hold``, only when resume() is called (how the browser test cuts the stream). */
  function drop(hold) { L.held = !!hold; if (L.abort) L.abort.abort(); }
  function resume() { if (L.held) { L.held = false; L.delay = 250; connect(); } }

  CL.live = { drop, resume, points: () => L.points, lastId: () => L.lastId, connected: () => L.connected };
  document.addEventListener("DOMContentLoaded", () => {
    if (CL.map && CL.map.addLayer) CL.map.addLayer("live", () => (L.points.length ? [{ type: "scatter", mode: "markers",
      x: L.points.map((q) => q.lon), y: L.points.map((q) => q.lat), name: "live", hoverinfo: "text",
      text: L.points.map((q) => q.category), marker: { size: 8, symbol: "diamond", color: "#c2185b" } }] : []));
    const wait = setInterval(() => { if (CL.session.token && CL.session.role) { clearInterval(wait); connect(); } }, 300);
  });
})(window.CL);
