/* crimelens dashboard: log in, then draw the map, charts and tables from the API; live feed over SSE.
   No inline scripts (CSP), no network beyond this origin (and the optional tile server). */
"use strict";
(function () {
  const API = "/api/v1";
  const $ = (id) => document.getElementById(id);
  const HOT = ["#D62F27", "#ED7551", "#FAB984", "#F7F7F2", "#C0CCBE", "#849EBA", "#4575B5"];
  const DENSITY = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"];
  const AREAS = ["#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c"];
  let token = sessionStorage.getItem("crimelens.token");
  let feedAbort = null;
  let role = null;
  let alertMsg = "";  // outcome of the last acknowledgement, kept across redraws

  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    o.headers = Object.assign({ Authorization: "Bearer " + token }, o.headers);
    const r = await fetch(API + path, o);
    if (r.status === 401) { showLogin("Your session has ended; please sign in again."); throw new Error("401"); }
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  function showLogin(msg) {
    token = null; sessionStorage.removeItem("crimelens.token");
    if (feedAbort) feedAbort.abort();
    $("main").hidden = true; $("login-view").hidden = false; $("logout").hidden = true;
    $("whoami").textContent = ""; $("login-error").textContent = msg || "";
    $("username").focus();
  }

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
    token = (await r.json()).access_token;
    sessionStorage.setItem("crimelens.token", token);
    start();
  }

  async function logout() {
    try { await api("/auth/logout", { method: "POST" }); } catch (e) { /* already gone */ }
    showLogin("Signed out.");
  }

  function query() {
    const p = new URLSearchParams();
    if ($("f-from").value) p.set("from", $("f-from").value);
    if ($("f-to").value) p.set("to", $("f-to").value);
    if ($("f-category").value) p.append("category", $("f-category").value);
    if ($("f-area").value) p.append("area", $("f-area-col").value + ":" + $("f-area").value.trim());
    if ($("f-source").value) p.append("source", $("f-source").value.trim());
    return p;
  }

  const CONFIG = { displaylogo: false, responsive: true };
  const MARGIN = { l: 50, r: 10, t: 10, b: 40 };

  function classes(values, n) {
    const s = values.slice().sort((a, b) => a - b);
    return (v) => { let k = 0; for (let i = 1; i < n; i++) if (v > s[Math.floor(i * (s.length - 1) / n)]) k = i; return k; };
  }

  function polyTraces(fc, colourOf, names, line, opacity) {
    const groups = {};
    for (const f of fc.features) {
      const k = colourOf(f);
      const g = groups[k] || (groups[k] = { x: [], y: [] });
      const ring = f.geometry.coordinates[0];
      for (const p of ring) { g.x.push(p[0]); g.y.push(p[1]); }
      g.x.push(null); g.y.push(null);
    }
    return Object.keys(groups).map((k) => ({ type: "scatter", mode: "lines", fill: "toself", x: groups[k].x, y: groups[k].y,
      fillcolor: k, opacity: opacity, line: { color: line || k, width: line ? 1.5 : 0.5 }, name: names[k] || k,
      hoverinfo: "name" }));
  }

  async function drawMap(p) {
    const want = (id) => $(id).checked;
    const cell = await api("/aggregates/cells?" + p + "&cell_m=500");
    const traces = [];
    let lats = [];
    if (want("l-areas")) {
      const ar = await api("/aggregates/outlines?" + p + "&column=" + $("f-area-col").value);
      const cls = classes(ar.features.map((f) => f.properties.count), 5);
      traces.push(...polyTraces(ar, (f) => AREAS[cls(f.properties.count)], {}, "#2d4b2d", 0.35)
        .map((t, i) => Object.assign(t, { name: "areas (" + (i + 1) + ")", hoverinfo: "skip" })));
    }
    if (want("l-density")) {
      const cls = classes(cell.features.map((f) => f.properties.count), 5);
      const names = {}; DENSITY.forEach((c, i) => names[c] = "density class " + (i + 1) + " of 5");
      traces.push(...polyTraces(cell, (f) => DENSITY[cls(f.properties.count)], names, null, 0.75));
    }
    if (want("l-hotspots")) {
      const hs = await api("/hotspots?" + p);
      const names = {}; HOT.forEach((c, i) => names[c] = ["hot 99%", "hot 95%", "hot 90%", "n.s.", "cold 90%", "cold 95%", "cold 99%"][i]);
      traces.push(...polyTraces(hs, (f) => f.properties.color || "#F7F7F2", names, null, 0.9));
    }
    if (want("l-forecast")) {
      const models = await api("/forecasts");
      const fc = await api("/forecasts/" + encodeURIComponent(models[0].name) + "?" + p);
      traces.push(...polyTraces(fc, () => "rgba(0,0,0,0)", {}, "#6a3d9a", 1)
        .map((t) => Object.assign(t, { name: "top cells: " + fc.model })));
    }
    for (const f of cell.features) lats.push(f.geometry.coordinates[0][0][1]);
    const lat0 = lats.length ? lats.reduce((a, b) => a + b, 0) / lats.length : 0;
    const layout = { margin: { l: 50, r: 10, t: 10, b: 40 }, showlegend: true, legend: { x: 1.02, y: 1, font: { size: 11 } },
      xaxis: { title: "longitude", showgrid: false }, paper_bgcolor: "#fff", plot_bgcolor: "#eef1f4",
      yaxis: { title: "latitude", showgrid: false, scaleanchor: "x", scaleratio: 1 / Math.cos(lat0 * Math.PI / 180) } };
    await Plotly.react("map", traces, layout, CONFIG);
    $("map-note").textContent = cell.features.length + " cells of " + cell.parameters.cell_size_m +
      " m; hot spots: Getis-Ord Gi* with FDR; map drawn without tiles" + (document.body.dataset.tileUrl ? " (tiles set)" : "") + ".";
  }

  async function drawTrend(p) {
    const d = await api("/aggregates/timeseries?" + p + "&period=day&stl=true");
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
      yaxis2: { domain: [0, 0.25], title: "seasonal" }, xaxis2: { anchor: "y2" } }, CONFIG);
  }

  async function drawHourWeekday(p) {
    const d = await api("/aggregates/hour-weekday?" + p);
    await Plotly.react("hourweekday", [{ type: "heatmap", z: d.values, x: d.hours, y: d.weekdays, colorscale: "YlOrRd",
      colorbar: { title: "incidents" } }], { margin: { l: 80, r: 10, t: 10, b: 40 }, xaxis: { title: "hour (UTC)" },
      yaxis: { autorange: "reversed" } }, CONFIG);
  }

  async function drawCategories(p) {
    const d = await api("/aggregates/categories?" + p);
    const rows = d.rows.slice(0, 15).reverse();
    await Plotly.react("categories", [{ type: "bar", orientation: "h", x: rows.map((r) => r.count),
      y: rows.map((r) => r.category), marker: { color: "#1f5fa8" } }], { margin: { l: 150, r: 10, t: 10, b: 30 } }, CONFIG);
  }

  function table(id, head, rows, caption) {
    const t = $(id);
    t.replaceChildren();
    const c = document.createElement("caption"); c.textContent = caption; t.appendChild(c);
    const thead = t.createTHead().insertRow();
    for (const h of head) { const th = document.createElement("th"); th.scope = "col"; th.textContent = h; thead.appendChild(th); }
    const body = t.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      r.forEach((v, i) => { const td = tr.insertCell(); td.textContent = v === null || v === undefined ? "–" : v;
        if (i === 0) td.scope = "row"; });
    }
  }

  const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? "n/a" : Number(v).toFixed(d || 0);

  async function drawCompStat(p) {
    const d = await api("/aggregates/compstat?" + p);
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
    const m = await api("/models");
    const lb = m.leaderboard.map((r) => [r.model, fmt(r.hit_rate, 3), fmt(r.pai, 2), fmt(r.pei, 2)]);
    table("leaderboard", ["model", "hit rate", "PAI", "PEI"], lb,
      lb.length ? "Models ranked on held-out periods" : "No leaderboard published yet (run crimelens evaluate or demo)");
    const q = await api("/quarantine/summary");
    table("quarantine", ["source", "reason", "rows"], q.by_reason.map((r) => [r.source, r.reason, r.count]),
      q.total + " rows quarantined");
  }

  async function refresh(ev) {
    if (ev) ev.preventDefault();
    const p = query();
    $("status").textContent = "Loading…";
    try {
      await Promise.all([drawMap(p), drawTrend(p), drawHourWeekday(p), drawCategories(p), drawCompStat(p), drawSide()]);
      $("status").textContent = "Updated " + new Date().toLocaleTimeString();
    } catch (e) {
      if (e.message !== "401") $("status").textContent = "Could not load: " + e.message;
    }
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
      if (role === "analyst" || role === "admin") {
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

  async function feed() {
    if (feedAbort) feedAbort.abort();
    feedAbort = new AbortController();
    try {
      const r = await fetch(API + "/events", { headers: { Authorization: "Bearer " + token }, signal: feedAbort.signal });
      if (!r.ok || !r.body) throw new Error("feed " + r.status);
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, i); buf = buf.slice(i + 2);
          let ev = "message", data = "";
          for (const line of chunk.split("\n")) {
            if (line.startsWith("event:")) ev = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (ev === "incidents" && data) { addFeed(JSON.parse(data)); refresh(); }
          if (ev === "alert" && data) { addAlertFeed(JSON.parse(data)); drawAlerts().catch(() => {}); }
        }
      }
    } catch (e) {
      if (e.name === "AbortError" || !token) return;
    }
    if (token) setTimeout(feed, 3000);
  }

  async function start() {
    const me = await api("/auth/me");
    $("whoami").textContent = "Signed in as " + me.username + " (" + me.role + ")";
    role = me.role;
    $("login-view").hidden = true; $("main").hidden = false; $("logout").hidden = false;
    const recent = await api("/incidents?limit=10");
    addFeed({ items: recent.items }, false);
    feed();
    drawAlerts().catch(() => {});
    await refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("filters").addEventListener("submit", refresh);
    $("logout").addEventListener("click", logout);
    for (const id of ["l-density", "l-hotspots", "l-forecast", "l-areas"]) $(id).addEventListener("change", () => drawMap(query()));
    if (token) start().catch(() => showLogin()); else showLogin();
  });
})();
