/* Patrol plans: a stored shift plan (crimelens patrol schedule, GET /patrol/plans/{id}) drawn on the
   map through CL.map.addLayer — the chosen shift's covered cells as outlines and its units as
   numbered markers — with a table of every shift (units, covered cells, expected harm prevented). */
"use strict";
(function (CL) {
  const $ = CL.$;
  const P = { plans: [], plan: null, sites: [] };

  async function fetchPlan() {
    const id = $("pp-plan").value;
    P.plan = null;
    if (!id) return;
    P.plan = await CL.api("/patrol/plans/" + encodeURIComponent(id));
    const sel = $("pp-shift"), was = sel.value;
    sel.replaceChildren();
    for (const s of P.plan.plan.shifts) sel.appendChild(new Option(s.name + " " + String(s.start_hour).padStart(2, "0") +
      "-" + String(s.end_hour).padStart(2, "0"), s.name));
    if (P.plan.plan.shifts.some((s) => s.name === was)) sel.value = was;
    const harm = P.plan.plan.harm_prevented_per_shift || [];
    const rows = P.plan.plan.shifts.map((s, i) => {
      const f = P.plan.features.filter((x) => x.properties.shift === s.name);
      return [s.name, String(s.start_hour).padStart(2, "0") + "-" + String(s.end_hour).padStart(2, "0"),
        f.filter((x) => x.properties.kind === "site").length, f.filter((x) => x.properties.kind === "covered").length,
        harm[i] === undefined ? "" : CL.fmt(harm[i], 3)];
    });
    CL.table("pp-table", ["Shift", "Hours", "Units", "Covered cells", "Expected harm prevented"], rows,
      "Shifts of the " + P.plan.plan.method + " plan for " + P.plan.plan.day);
    $("pp-note").textContent = P.plan.plan.method + " plan for " + P.plan.plan.day + ", " + P.plan.plan.units +
      " units per shift" + (P.plan.plan.policy ? " (policy " + P.plan.plan.policy + ")" : "") + ".";
  }

  /** Map traces of the chosen plan and shift (none when off). */
  async function traces() {
    P.sites = [];
    if (!P.plan) return [];
    const shift = $("pp-shift").value;
    const cells = { x: [], y: [] }, sites = { x: [], y: [], text: [] };
    for (const f of P.plan.features) {
      if (f.properties.shift !== shift) continue;
      if (f.properties.kind === "covered") {
        for (const q of f.geometry.coordinates[0]) { cells.x.push(q[0]); cells.y.push(q[1]); }
        cells.x.push(null); cells.y.push(null);
      } else if (f.properties.kind === "site") {
        sites.x.push(f.geometry.coordinates[0]); sites.y.push(f.geometry.coordinates[1]);
        sites.text.push(String(f.properties.unit));
        P.sites.push({ unit: f.properties.unit, cell_id: f.properties.cell_id });
      }
    }
    const group = "Patrol plan " + P.plan.plan.day + " (" + shift + ")";
    return [
      { type: "scatter", mode: "lines", fill: "toself", x: cells.x, y: cells.y, name: "covered cells",
        fillcolor: "rgba(31,119,180,0.25)", line: { color: "rgba(31,119,180,0.9)", width: 0.8 },
        legendgroup: "patrolplan", legendgrouptitle: { text: group }, legendrank: 950, hoverinfo: "skip" },
      { type: "scatter", mode: "markers+text", x: sites.x, y: sites.y, text: sites.text, name: "units",
        textposition: "top center", marker: { size: 11, color: "#08306b", symbol: "circle" },
        legendgroup: "patrolplan", legendrank: 951, hovertemplate: "unit %{text}<extra></extra>" },
    ];
  }

  async function load() {
    try { P.plans = (await CL.api("/patrol/plans")).plans; } catch (e) { return; }
    const sel = $("pp-plan"), was = sel.value;
    sel.replaceChildren(new Option("off", ""));
    for (const p of P.plans) sel.appendChild(new Option(p.day + " " + p.method + " (" + p.units + " units)", p.id));
    if (P.plans.some((p) => p.id === was)) sel.value = was;
    $("pp-note").textContent = P.plans.length ? "" : "No patrol plans stored yet (crimelens patrol schedule).";
  }

  function init() {
    CL.map.addLayer("patrolplan", traces);
    const redraw = () => CL.map.draw(CL.query()).catch((e) => { if (e.message !== "401") $("pp-note").textContent = e.message; });
    $("pp-plan").addEventListener("change", () => fetchPlan().then(redraw).catch((e) => { $("pp-note").textContent = e.message; }));
    $("pp-shift").addEventListener("change", redraw);
    $("pp-plan").addEventListener("focus", load);
    const obs = new MutationObserver(() => { if (!$("main").hidden) { obs.disconnect(); load(); } });
    obs.observe($("main"), { attributes: true, attributeFilter: ["hidden"] });
    if (!$("main").hidden) load();
  }

  CL.plans = { load, sites: () => P.sites, plan: () => P.plan };
  document.addEventListener("DOMContentLoaded", init);
})(window.CL);
