/* crimelens dashboard: log in, then draw the map, charts and tables from the API; live feed over SSE.
   The map, drill-down, time slider and sharing live in map.js, drill.js, timeline.js and share.js
   (all on window.CL, core.js). No inline scripts (CSP), no network beyond this origin (and the
   optional tile server). */
"use strict";
(function (CL) {
  const API = CL.API, $ = CL.$, api = CL.api, fmt = CL.fmt, table = CL.table, CONFIG = CL.CONFIG;
  const MARGIN = { l: 50, r: 10, t: 10, b: 40 };
  let alertMsg = "";  // outcome of the last acknowledgement, kept across redraws
  let updates = 0;  // numbered so two redraws within one second still read as a new update

  function updated() {
    updates += 1;
    CL.state.updates = updates;  // what bench/dashboard.py waits on
    CL.state.updatedAt = performance.now();
    $("status").textContent = "Updated " + new Date().toLocaleTimeString() + " (" + updates + ")";
  }

  function showLogin(msg) {
    CL.session.token = null; sessionStorage.removeItem("crimelens.token");
    CL.events.stop();
    CL.timeline.stop();
    $("main").hidden = true; $("login-view").hidden = false; $("logout").hidden = true;
    $("whoami").textContent = ""; $("login-error").textContent = msg || "";
    $("username").focus();
  }
  CL.session.onExpired = () => showLogin("Your session has ended; please sign in again.");

  async function login(ev) {
    ev.preventDefault();
    const body = { username: $("username").value, password: $("password").value };
    if ($("totp").value) body.totp = $("totp").value;
    const r = await fetch(API + "/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) });
    $("password").value = "";
    if (!r.ok) {
      const d = await r.json().catch(() => ({}));
      $("login-error").textContent = typeof d.detail === "string" ? d.detail : "Sign-in failed";
      return;
    }
    CL.session.token = (await r.json()).access_token;
    sessionStorage.setItem("crimelens.token", CL.session.token);
    start();
  }

  async function logout() {
    try { await api("/auth/logout", { method: "POST" }); } catch (e) { /* already gone */ }
    showLogin("Signed out.");
  }

  function windowShape() {
    const per = CL.period();
    if (!Number($("t-window").value) || !per.from) return [];
    return [{ type: "rect", xref: "x", yref: "paper", x0: per.from, x1: per.to, y0: 0.38, y1: 1,
      fillcolor: "rgba(255,191,71,0.35)", line: { width: 0 } }];
  }

  async function drawTrend() {
    const d = await api("/aggregates/timeseries?" + CL.filterParams() + "&period=day&stl=true");
    const x = d.points.map((r) => r.period_start);
    const t = [{ x: x, y: d.points.map((r) => r.count), type: "scatter", mode: "lines", name: "incidents per day",
      line: { color: "rgba(31,95,168,0.35)", width: 1 } }];
    if (d.points.length && d.points[0].trend !== undefined) {
      t.push({ x: x, y: d.points.map((r) => r.trend), type: "scatter", mode: "lines", name: "trend (STL)",
        line: { color: "#14324f", width: 2.5 } });
      t.push({ x: x.slice(-28), y: d.points.slice(-28).map((r) => r.seasonal), type: "bar", name: "weekly seasonal (last 4 weeks)",
        xaxis: "x2", yaxis: "y2", marker: { color: "#ED7551" } });
    }
    await Plotly.react("trend", t, { margin: MARGIN, legend: { orientation: "h", y: -0.25 },
      grid: { rows: 2, columns: 1, roworder: "top to bottom" }, yaxis: { title: "incidents", domain: [0.38, 1] },
      yaxis2: { domain: [0, 0.25], title: "seasonal" }, xaxis2: { anchor: "y2" }, shapes: windowShape() }, CONFIG);
  }

  async function drawHourWeekday(p) {
    const d = await CL.cached("/aggregates/hour-weekday?" + p);
    await Plotly.react("hourweekday", [{ type: "heatmap", z: d.values, x: d.hours, y: d.weekdays, colorscale: "YlOrRd",
      colorbar: { title: "incidents" } }], { margin: { l: 80, r: 10, t: 10, b: 40 }, xaxis: { title: "hour (UTC)" },
      yaxis: { autorange: "reversed" } }, CONFIG);
  }

  async function drawCategories(p) {
    const d = await CL.cached("/aggregates/categories?" + p);
    const rows = d.rows.slice(0, 15).reverse();
    await Plotly.react("categories", [{ type: "bar", orientation: "h", x: rows.map((r) => r.count),
      y: rows.map((r) => r.category), marker: { color: "#1f5fa8" } }], { margin: { l: 150, r: 10, t: 10, b: 30 } }, CONFIG);
  }

  /** CompStat of the filters, as of the last day of ``per`` (of the data when null). */
  const compstatPath = (per) => "/aggregates/compstat?" + CL.filterParams() + (per ? "&as_of=" + CL.addDays(per.to, -1) : "");

  async function drawCompStat() {
    const per = CL.period();
    const d = await CL.cached(compstatPath(Number($("t-window").value) && per.to ? per : null));
    const head = ["offence"];
    for (const w of ["7d", "28d", "ytd"]) head.push(w + " now", w + " last yr", w + " %", w + " p");
    const rows = d.rows.map((r) => {
      const out = [r.category || Object.values(r)[0]];
      for (const w of ["7d", "28d", "ytd"]) out.push(fmt(r[w + "_current"]), fmt(r[w + "_last_year"]),
        r[w + "_pct_change"] === null ? "n/a" : fmt(r[w + "_pct_change"]) + "%", fmt(r[w + "_p"], 3));
      return out;
    });
    const win = d.windows["7d"];
    table("compstat", head, rows, win ? "Week " + win.from + " to " + win.to + " vs " + win.last_year_from + " to " + win.last_year_to : "No data");
  }

  async function drawSide() {
    const [m, q] = await Promise.all([api("/models"), api("/quarantine/summary")]);
    const lb = m.leaderboard.map((r) => [r.model, fmt(r.hit_rate, 3), fmt(r.pai, 2), fmt(r.pei, 2)]);
    table("leaderboard", ["model", "hit rate", "PAI", "PEI"], lb,
      lb.length ? "Models ranked on held-out periods" : "No leaderboard published yet (run crimelens evaluate or demo)");
    table("quarantine", ["source", "reason", "rows"], q.by_reason.map((r) => [r.source, r.reason, r.count]),
      q.total + " rows quarantined");
  }

  /** The slider's GET answers for period ``per``, asked ahead (playback loads the next week while
      this one shows); they wait in CL.cached for the redraw. */
  function prefetch(per) {
    const p = CL.filterParams({ from: per.from, to: per.to });
    const quiet = (got) => { got.catch(() => {}); };
    quiet(CL.cached("/aggregates/hour-weekday?" + p));
    quiet(CL.cached("/aggregates/categories?" + p));
    quiet(CL.cached(compstatPath(per)));
    CL.map.prefetch(p).forEach(quiet);
  }

  /** What the time slider moves: the map, the window on the trend, hour × weekday, categories, CompStat. */
  async function periodRefresh() {
    const p = CL.query();
    $("status").textContent = "Loading…";
    try {
      await Promise.all([CL.map.draw(p), Plotly.relayout("trend", { shapes: windowShape() }), drawHourWeekday(p),
        drawCategories(p), drawCompStat()]);
      CL.writeUrl();
      updated();
    } catch (e) {
      if (e.message !== "401") $("status").textContent = "Could not load: " + e.message;
    }
  }

  async function refresh(ev) {
    if (ev) ev.preventDefault();
    const p = CL.query();
    $("status").textContent = "Loading…";
    CL.forget();  // the store may have changed: the slider's reused answers start again
    try {
      // With "all dates" nothing waits for the week list, so it loads beside the rest (one round trip fewer).
      const weeks = CL.timeline.load();
      if (Number($("t-window").value)) await weeks;
      await Promise.all([weeks, CL.map.draw(CL.query()), drawTrend(), drawHourWeekday(CL.query()), drawCategories(CL.query()),
        drawCompStat(), drawSide()]);
      CL.writeUrl();
      updated();
    } catch (e) {
      if (e.message !== "401") $("status").textContent = "Could not load: " + e.message;
    }
    return p;
  }

  function addFeed(data, live) {
    const ul = $("feed");
    for (const it of (data.items || []).slice().reverse()) {  // items come newest first
      const li = document.createElement("li");
      if (live !== false) li.className = "new";
      li.textContent = (it.occurred_at || "").slice(0, 16).replace("T", " ") + " · " + it.category +
        (it.district ? " · district " + it.district : "") + " · " + it.source + " " + it.incident_id;
      ul.insertBefore(li, ul.firstChild);
    }
    while (ul.children.length > 100) ul.removeChild(ul.lastChild);
  }

  function alertText(a) {
    const exp = a.expected === null || a.expected === undefined ? "" : " vs " + fmt(a.expected, 1) + " expected";
    return a.category + " · " + a.area_level + " " + a.area + " · " + fmt(a.observed) + " observed" + exp +
      " · " + (a.window_start || "").slice(0, 10) + "–" + (a.window_end || "").slice(0, 10);
  }

  function severity(a) {
    const s = document.createElement("span");
    s.className = "sev sev-" + a.severity; s.textContent = a.severity;
    s.setAttribute("aria-label", "severity " + a.severity);
    return s;
  }

  function addAlertFeed(data) {
    const ul = $("feed"), a = data.alert, li = document.createElement("li");
    li.className = "new alert";
    li.append(severity(a), " Alert (" + data.action + "): " + alertText(a));
    ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > 100) ul.removeChild(ul.lastChild);
  }

  async function ackAlert(id, btn) {
    btn.disabled = true;
    let msg = "Alert acknowledged.";
    try {
      await api("/alerts/" + id + "/ack", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
    } catch (e) {
      btn.disabled = false;
      if (e.message === "401") return;
      msg = "Could not acknowledge: " + e.message + ".";
    }
    alertMsg = msg;
    drawAlerts().catch(() => {});
  }

  async function drawAlerts() {
    const d = await api("/alerts?status=open&limit=50");
    const ul = $("open-alerts");
    ul.replaceChildren();
    for (const a of d.items) {
      const li = document.createElement("li"), span = document.createElement("span");
      span.append(severity(a), " " + alertText(a));
      li.appendChild(span);
      const show = document.createElement("button");
      show.type = "button"; show.textContent = "Incidents";
      show.setAttribute("aria-label", "Incidents behind alert: " + alertText(a));
      show.addEventListener("click", () => {
        const p = CL.filterParams({ from: (a.window_start || "").slice(0, 10), to: CL.addDays((a.window_end || "").slice(0, 10), 1) });
        if (a.area_level && a.area && !a.area_level.startsWith("h3")) p.append("area", a.area_level + ":" + a.area);
        if (a.category) p.set("category", a.category);
        CL.drill.open({ title: "Alert: " + alertText(a), params: p });
      });
      li.appendChild(show);
      if (CL.session.role === "analyst" || CL.session.role === "admin") {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = "Acknowledge";
        b.setAttribute("aria-label", "Acknowledge alert: " + alertText(a));
        b.addEventListener("click", () => ackAlert(a.alert_id, b));
        li.appendChild(b);
      }
      ul.appendChild(li);
    }
    $("alerts-note").textContent = (alertMsg ? alertMsg + " " : "") + (d.items.length ? d.total + " open." : "No open alerts.");
  }

  /* Live incidents redraw the charts, map and CompStat at most once every CL.liveRedrawMs (default 12 s;
     set it before sign-in, e.g. from a test): at 1,000 events/s a full redraw per batch would keep the
     service and the browser busy. The first batch after a quiet spell redraws at once; later ones are
     counted and drawn together. The feed list and the Live panel still show every batch at once. */
  const redraw = { timer: null, last: -Infinity, pending: 0 };
  CL.state.liveRedraws = 0;

  function liveCue(text) {
    let cue = $("live-cue");
    if (!cue) {
      cue = document.createElement("span");
      cue.id = "live-cue"; cue.className = "note"; cue.setAttribute("role", "status");
      $("status").after(" ", cue);
    }
    cue.textContent = text;
  }

  function liveRedraw(data) {
    redraw.pending += Number(data.stored || 0) + Number(data.updated || 0) || (data.items || []).length;
    const every = Number(CL.liveRedrawMs) >= 0 ? Number(CL.liveRedrawMs) : 12000;
    if (redraw.timer !== null) {
      liveCue(redraw.pending + " new incidents; charts redraw by " +
        new Date(Date.now() + Math.max(0, redraw.last + every - performance.now())).toLocaleTimeString());
      return;
    }
    redraw.timer = setTimeout(() => {
      const n = redraw.pending;
      redraw.timer = null; redraw.pending = 0; redraw.last = performance.now();
      CL.state.liveRedraws += 1;
      refresh().then(() => liveCue("updated " + new Date().toLocaleTimeString() + " · " + n + " new incidents"));
    }, Math.max(0, redraw.last + every - performance.now()));
  }

  /** The live feed: incidents and alerts from the page's one /events reader (CL.events, core.js). */
  function feed(ev, data) {
    if (ev === "incidents") { addFeed(data); liveRedraw(data); }
    if (ev === "alert") { addAlertFeed(data); drawAlerts().catch(() => {}); }
  }
  CL.events.subscribe(feed);

  async function start() {
    const me = await api("/auth/me");
    $("whoami").textContent = "Signed in as " + me.username + " (" + me.role + ")";
    CL.session.role = me.role;
    $("login-view").hidden = true; $("main").hidden = false; $("logout").hidden = false;
    // the recent incidents load beside the dashboard (one round trip fewer before it); the live
    // feed starts after them, so its newer items stay on top
    const recent = api("/incidents?limit=10").then((r) => { addFeed({ items: r.items }, false); CL.events.start(); });
    drawAlerts().catch(() => {});
    await Promise.all([refresh(), recent]);
  }

  function openHash(hash) {
    CL.fromUrl(hash);
    if (CL.session.role) refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    CL.fromUrl(location.hash);
    $("login-form").addEventListener("submit", login);
    $("filters").addEventListener("submit", refresh);
    $("logout").addEventListener("click", logout);
    const redrawMap = () => CL.map.draw(CL.query()).then(CL.writeUrl).catch((e) => {
      if (e.message !== "401") $("status").textContent = "Could not load: " + e.message; });
    for (const id of ["l-density", "l-hotspots", "l-forecast", "l-areas", "c-layer", "c-measure", "c-scheme"]) {
      $(id).addEventListener("change", redrawMap);
    }
    $("c-pop").addEventListener("change", () => {
      const f = $("c-pop").files[0];
      if (f) CL.map.readPopulation(f).then((n) => { $("status").textContent = n + " areas with residents loaded."; redrawMap(); });
    });
    CL.timeline.init(periodRefresh, prefetch);
    CL.drill.init();
    CL.share.init(openHash);
    window.addEventListener("hashchange", () => { if (location.hash.slice(1) !== CL.toUrl()) openHash(location.hash); });
    if (CL.session.token) start().catch(() => showLogin()); else showLogin();
  });
})(window.CL);
