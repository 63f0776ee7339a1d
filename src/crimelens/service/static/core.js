/* crimelens dashboard, shared core: the API client, the page state (filters, week, window,
   comparison, choropleth) read from and written to the URL, and colour schemes.
   Every other script hangs its functions on window.CL. No network beyond this origin. */
"use strict";
window.CL = (function () {
  const API = "/api/v1";
  const $ = (id) => document.getElementById(id);
  const session = { token: sessionStorage.getItem("crimelens.token"), role: null, onExpired: null };

  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    o.headers = Object.assign({ Authorization: "Bearer " + session.token }, o.headers);
    const r = await fetch(API + path, o);
    if (r.status === 401) { if (session.onExpired) session.onExpired(); throw new Error("401"); }
    if (!r.ok) {
      const d = await r.json().catch(() => ({}));
      const msg = typeof d.detail === "string" ? d.detail : (Array.isArray(d.detail) && d.detail[0] ? d.detail[0].msg : "");
      throw new Error(path.split("?")[0] + ": " + r.status + (msg ? " (" + msg + ")" : ""));
    }
    return r.json();
  }

  /* GET answers the time slider and layer toggles reuse: the store changes only between full
     refreshes (filters applied, new incidents), which clear it, so a week seen once redraws
     without asking the server again. */
  const memo = new Map();
  function cached(path) {
    if (!memo.has(path)) {
      if (memo.size >= 500) memo.delete(memo.keys().next().value);
      const got = api(path);
      memo.set(path, got);
      got.catch(() => memo.delete(path));
    }
    return memo.get(path);
  }
  const forget = () => memo.clear();

  // Colour-blind-safe schemes (ColorBrewer; checked for deuteranopia/protanopia/tritanopia).
  const SCHEMES = {
    density: ["#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026"],        // YlOrRd, sequential
    choropleth: ["#ffffd9", "#c7e9b4", "#7fcdbb", "#1d91c0", "#253494", "#081d58", "#0b0b3b", "#050520", "#000010"],  // YlGnBu
    change: ["#2d004b", "#8073ac", "#d8daeb", "#fee0b6", "#e08214", "#7f3b08"],  // PuOr, diverging: fewer → more
    hot: ["#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0", "#67a9cf", "#2166ac"],  // RdBu: hot 99% → cold 99%
  };

  const day = (d) => d.toISOString().slice(0, 10);
  const addDays = (s, n) => { const d = new Date(s + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + n); return day(d); };

  // The page state: what the URL holds (filters only: never a record or a personal field).
  const KEYS = ["from", "to", "category", "area_col", "area", "source", "week", "window", "compare",
    "choro", "measure", "scheme", "layers", "view"];
  const state = { weeks: [] };

  function filterParams(over) {
    const p = new URLSearchParams();
    const from = over && over.from !== undefined ? over.from : $("f-from").value;
    const to = over && over.to !== undefined ? over.to : $("f-to").value;
    if (from) p.set("from", from);
    if (to) p.set("to", to);
    if ($("f-category").value) p.append("category", $("f-category").value);
    if ($("f-area").value) p.append("area", $("f-area-col").value + ":" + $("f-area").value.trim());
    if ($("f-source").value) p.append("source", $("f-source").value.trim());
    return p;
  }

  /** The period the time slider selects: [from, to) of the chosen window ending with the chosen week. */
  function period() {
    const w = Number($("t-window").value);
    if (!w || !state.weeks.length) return { from: $("f-from").value, to: $("f-to").value, label: "all weeks" };
    const i = Number($("t-week").value);
    const end = addDays(state.weeks[i], 7);
    const from = addDays(end, -7 * w);
    return { from: from, to: end, label: (w === 1 ? "week of " + state.weeks[i] : w + " weeks to " + addDays(end, -1)) };
  }

  /** The same period one year (52 weeks, so weekdays line up) earlier. */
  function lastYear(p) { return { from: addDays(p.from, -364), to: addDays(p.to, -364) }; }

  /** Query of the current filters limited to the slider's period. */
  function query() { const p = period(); return filterParams({ from: p.from, to: p.to }); }

  function toUrl() {
    const u = new URLSearchParams();
    const put = (k, v) => { if (v !== "" && v !== null && v !== undefined && v !== false) u.set(k, v); };
    put("view", $("v-name").value.trim());
    put("from", $("f-from").value); put("to", $("f-to").value); put("category", $("f-category").value);
    put("area", $("f-area").value.trim()); if ($("f-area").value.trim()) put("area_col", $("f-area-col").value);
    put("source", $("f-source").value.trim());
    if (Number($("t-window").value)) { put("window", $("t-window").value); put("week", state.weeks[Number($("t-week").value)]); }
    put("compare", $("t-compare").checked ? "1" : "");
    put("choro", $("c-layer").value);
    if ($("c-layer").value) { put("measure", $("c-measure").value); put("scheme", $("c-scheme").value); }
    const layers = ["l-density", "l-hotspots", "l-forecast", "l-areas"].filter((id) => $(id).checked).map((id) => id.slice(2));
    put("layers", layers.join(",") || "none");
    return u.toString();
  }

  function writeUrl() { history.replaceState(null, "", "#" + toUrl()); }

  /** Set the controls from a URL hash; the week waits until the week list is known. */
  function fromUrl(hash) {
    const u = new URLSearchParams((hash || "").replace(/^#/, ""));
    for (const k of u.keys()) if (!KEYS.includes(k)) u.delete(k);
    const set = (id, k) => { if (u.has(k)) $(id).value = u.get(k); };
    set("v-name", "view"); set("f-from", "from"); set("f-to", "to"); set("f-category", "category");
    set("f-area-col", "area_col"); set("f-area", "area"); set("f-source", "source"); set("t-window", "window");
    set("c-layer", "choro"); set("c-measure", "measure"); set("c-scheme", "scheme");
    $("t-compare").checked = u.get("compare") === "1";
    if (u.has("layers")) {
      const on = u.get("layers").split(",");
      for (const id of ["density", "hotspots", "forecast", "areas"]) $("l-" + id).checked = on.includes(id);
    }
    state.pendingWeek = u.get("week");
    return u;
  }

  function setWeeks(weeks) {
    state.weeks = weeks;
    const s = $("t-week");
    s.max = String(Math.max(0, weeks.length - 1));
    let i = weeks.length - 1;
    if (state.pendingWeek && weeks.includes(state.pendingWeek)) i = weeks.indexOf(state.pendingWeek);
    state.pendingWeek = null;
    s.value = String(Math.max(0, i));
  }

  /* The page's one reader of GET /events (Server-Sent Events read with fetch, since EventSource
     cannot send the bearer token). Every panel subscribes a handler(event, data, id); one
     connection serves them all. Each event id is handed on once: after a dropped connection the
     reader reconnects with growing delay (from 500 ms up to 4x the server's "retry") and sends
     Last-Event-ID, so the server replays what was published meanwhile and a replayed id is skipped. */
  const events = (function () {
    const E = { handlers: new Set(), watchers: new Set(), lastId: null, abort: null, retryMs: 3000, delay: 500,
      seen: new Set(), held: false, connected: false, running: false };
    const note = (up) => { E.connected = up; for (const w of E.watchers) w(up, E.held); };

    function dispatch(chunk) {
      let ev = "message", data = "", id = null;
      for (const line of chunk.split("\n")) {
        if (line.startsWith("id:")) id = line.slice(3).trim();
        else if (line.startsWith("event:")) ev = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
        else if (line.startsWith("retry:")) E.retryMs = parseInt(line.slice(6), 10) || E.retryMs;
      }
      if (id !== null) {
        if (E.seen.has(id)) return;  // a replayed event already handed on
        E.seen.add(id); E.lastId = id;
        if (E.seen.size > 5000) E.seen.delete(E.seen.values().next().value);
      }
      if (!data) return;
      const parsed = JSON.parse(data);
      for (const h of E.handlers) { try { h(ev, parsed, id); } catch (e) { console.error(e); } }
    }

    async function connect() {
      if (!session.token || !E.running) return;
      const abort = new AbortController();
      E.abort = abort;
      const headers = { Authorization: "Bearer " + session.token };
      if (E.lastId !== null) headers["Last-Event-ID"] = E.lastId;
      try {
        const r = await fetch(API + "/events", { headers, signal: abort.signal });
        if (!r.ok || !r.body) throw new Error("events " + r.status);
        E.delay = 500; note(true);
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) { dispatch(buf.slice(0, i)); buf = buf.slice(i + 2); }
        }
      } catch (e) { /* dropped, refused or aborted: decided below */ }
      if (E.abort !== abort) return;  // superseded by stop() or a newer start()
      note(false);
      if (E.held || !E.running || !session.token) return;
      E.delay = Math.min(E.delay * 2, E.retryMs * 4);
      setTimeout(connect, E.delay);
    }

    /** Open the page's connection (after sign-in); a second call restarts it. */
    function start() { stop(); E.running = true; E.held = false; E.delay = 500; connect(); }
    /** Close it for good (sign-out): the next start() begins afresh, with no Last-Event-ID. */
    function stop() {
      E.running = false; const a = E.abort; E.abort = null; if (a) a.abort();
      E.lastId = null; E.seen.clear(); if (E.connected) note(false);
    }
    /** Drop the connection; it reconnects by itself, or with ``hold`` only on resume() (tests cut it so). */
    function drop(hold) { E.held = !!hold; if (E.abort) E.abort.abort(); }
    function resume() { if (E.held && E.running) { E.held = false; E.delay = 250; connect(); } }
    function subscribe(handler) { E.handlers.add(handler); return () => E.handlers.delete(handler); }
    /** watch(fn): fn(connected, held) on every connect and disconnect. */
    function watch(fn) { E.watchers.add(fn); return () => E.watchers.delete(fn); }
    return { subscribe, watch, start, stop, drop, resume, connected: () => E.connected, lastId: () => E.lastId };
  })();

  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? "n/a" : Number(v).toFixed(d || 0);

  function table(id, head, rows, caption) {
    const t = $(id);
    t.replaceChildren();
    const c = document.createElement("caption"); c.textContent = caption; t.appendChild(c);
    const thead = t.createTHead().insertRow();
    for (const h of head) { const th = document.createElement("th"); th.scope = "col"; th.textContent = h; thead.appendChild(th); }
    const body = t.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      r.forEach((v, i) => {
        const td = tr.insertCell();
        if (v instanceof Node) td.appendChild(v); else td.textContent = v === null || v === undefined ? "–" : v;
        if (i === 0) td.scope = "row";
      });
    }
    return t;
  }

  return { API, $, session, api, cached, forget, events, SCHEMES, state, day, addDays, filterParams, period, lastYear, query,
    toUrl, writeUrl, fromUrl, setWeeks, fmt, table, CONFIG: { displaylogo: false, responsive: true } };
})();
