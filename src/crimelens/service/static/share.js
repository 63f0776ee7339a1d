/* Share and brief: every panel exports PNG and CSV; views saved by name (filters in the URL,
   never a record or a personal field); the print layout is app.css's @media print. */
"use strict";
(function (CL) {
  const $ = CL.$;
  const VIEWS = "crimelens.views";

  function save(name, href) {
    const a = document.createElement("a");
    a.href = href; a.download = name; a.hidden = true;
    document.body.appendChild(a); a.click(); a.remove();
  }

  /** A CSV cell; formula-looking text is neutralised so spreadsheets do not run it. */
  function cell(v) {
    let s = v === null || v === undefined ? "" : String(v);
    if (/^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  const csv = (rows) => rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";

  function plotRows(gd) {
    const rows = [["trace", "x", "y", "value"]];
    for (const t of gd.data || []) {
      if (t.type === "heatmap") {
        t.y.forEach((y, i) => t.x.forEach((x, j) => rows.push([t.name || "heatmap", x, y, t.z[i][j]])));
      } else if (t.name !== "click") {
        (t.x || []).forEach((x, i) => { if (x !== null) rows.push([t.name || t.type, x, t.y[i], ""]); });
      }
    }
    return rows;
  }

  function panelRows(sec) {
    const gd = sec.querySelector(".plot");
    if (gd && gd.id === "map") {
      const r = CL.map.rows();
      const keys = ["layer", "area", "class", "value", "lon", "lat"];
      return [keys].concat(r.map((o) => keys.map((k) => (o[k] === undefined ? "" : o[k]))));
    }
    if (gd && gd.data) return plotRows(gd);
    const rows = [];
    for (const t of sec.querySelectorAll("table:not([hidden])")) {
      for (const tr of t.querySelectorAll("tr")) rows.push([...tr.children].map((c) => c.textContent.trim()));
    }
    const items = sec.querySelectorAll("ul > li");
    if (sec.querySelector("ul")) rows.push(["item"]);
    for (const li of items) rows.push([li.textContent.trim()]);
    if (!rows.some((r) => r.length)) {  // nothing drawn yet: say so, with the panel's own note
      const note = sec.querySelector(".note");
      rows.length = 0;
      rows.push(["note"], [(note && note.textContent.trim()) || "No rows shown in this panel."]);
    }
    return rows;
  }

  /** Draw a non-plot panel (tables, lists) as text on a canvas. */
  function textPng(title, rows) {
    const c = document.createElement("canvas"), lh = 18;
    const lines = [title].concat(rows.slice(0, 120).map((r) => r.join("   ")));
    c.width = 1200; c.height = lh * (lines.length + 1) + 10;
    const g = c.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height);
    g.fillStyle = "#1d2329"; g.font = "13px system-ui, sans-serif";
    lines.forEach((l, i) => { g.font = (i === 0 ? "bold 15px" : "13px") + " system-ui, sans-serif"; g.fillText(l, 10, lh * (i + 1)); });
    return c.toDataURL("image/png");
  }

  const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");

  async function exportPanel(sec, kind) {
    const title = sec.querySelector("h2").textContent;
    const name = "crimelens-" + slug(title) + "-" + CL.day(new Date());
    if (kind === "csv") {
      save(name + ".csv", URL.createObjectURL(new Blob([csv(panelRows(sec))], { type: "text/csv" })));
      return;
    }
    const gd = sec.querySelector(".plot");
    const url = gd && gd.data ? await Plotly.toImage(gd, { format: "png", width: gd.clientWidth || 800, height: gd.clientHeight || 500 })
      : textPng(title, panelRows(sec));
    save(name + ".png", URL.createObjectURL(pngBlob(url)));
  }

  /** A data: URL as a Blob, so the saved link is a short blob: URL like the CSV one. */
  function pngBlob(dataUrl) {
    const bin = atob(dataUrl.slice(dataUrl.indexOf(",") + 1)), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return new Blob([out], { type: "image/png" });
  }

  function addButtons() {
    for (const sec of document.querySelectorAll("main section.card[aria-labelledby]")) {
      const h = sec.querySelector("h2");
      if (!h || sec.querySelector(".export")) continue;
      const bar = document.createElement("div");
      bar.className = "export";
      for (const kind of ["png", "csv"]) {
        const b = document.createElement("button");
        b.type = "button"; b.className = "small"; b.textContent = kind.toUpperCase(); b.dataset.export = kind;
        b.setAttribute("aria-label", "Export " + h.textContent + " as " + kind.toUpperCase());
        b.addEventListener("click", () => exportPanel(sec, kind).catch((e) => { $("status").textContent = "Export failed: " + e.message; }));
        bar.appendChild(b);
      }
      h.after(bar);
    }
  }

  // -- saved views --------------------------------------------------------------------------
  function views() { try { return JSON.parse(localStorage.getItem(VIEWS) || "{}"); } catch (e) { return {}; } }

  function listViews() {
    const sel = $("v-open"), all = views();
    sel.replaceChildren(new Option("choose…", ""));
    for (const n of Object.keys(all).sort()) sel.appendChild(new Option(n, n));
  }

  function saveView(ev) {
    ev.preventDefault();
    const name = $("v-name").value.trim();
    if (!name) { $("v-status").textContent = "Name the view first."; return; }
    const all = views();
    all[name] = CL.toUrl();
    localStorage.setItem(VIEWS, JSON.stringify(all));
    CL.writeUrl();
    listViews();
    $("v-open").value = name;
    $("v-status").textContent = "Saved “" + name + "”; its link is this page's address.";
  }

  function init(openHash) {
    addButtons();
    listViews();
    $("views").addEventListener("submit", saveView);
    $("v-open").addEventListener("change", () => {
      const h = views()[$("v-open").value];
      if (h) openHash("#" + h);
    });
    $("print").addEventListener("click", () => window.print());
  }

  CL.share = { init, csv, exportPanel, views };
})(window.CL);
