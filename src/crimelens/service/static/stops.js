/* Stops and arrests audit: rates per 1,000 residents by group against a population table the
   analyst supplies (a CSV of group,population), rate ratios with their intervals, outcome rates and
   hit rates, from POST /fairness/stops. Analysts and admins only; viewers are told so. */
"use strict";
(function (CL) {
  const $ = CL.$;
  const S = { population: null };
  const pct = (v) => (v === null || v === undefined ? "–" : CL.fmt(100 * v, 1) + "%");
  const ci = (c, d) => (c && c[0] !== null && c[0] !== undefined ? CL.fmt(c[0], d) + " – " + (c[1] === null ? "∞" : CL.fmt(c[1], d)) : "–");

  /** Rows of a group,population CSV (header line first). */
  function readCsv(text) {
    const rows = [];
    for (const line of text.split(/\r?\n/).slice(1)) {
      const cells = line.split(",").map((v) => (v || "").trim().replace(/^"|"$/g, ""));
      if (cells[0] && Number(cells[1]) > 0) rows.push({ group: cells[0], population: Number(cells[1]) });
    }
    return rows;
  }

  function share(o) {
    return o && o.of ? pct(o.rate) + " (" + o.count + "/" + o.of + ")" : "–";
  }

  function draw(d) {
    const head = ["Group", "Records", "Population", "Rate per 1,000", "Rate CI", "Rate ratio", "Rate ratio CI",
      "Arrest outcome", "No further action", "Hit rate"];
    const rows = d.groups.map((g) => [g.group, g.records, CL.fmt(g.population, 0), CL.fmt(g.rate_per_1000, 2),
      ci(g.rate_ci, 2), g.group === d.reference ? "reference" : CL.fmt(g.rate_ratio, 2), ci(g.rate_ratio_ci, 2),
      share(g.outcomes && g.outcomes.arrest), share(g.outcomes && g.outcomes.no_further_action), share(g.hit_rate)]);
    CL.table("stops-table", head, rows, d.kinds.join(" and ") + " per 1,000 residents by " + d.group_column +
      " (reference: " + d.reference + ", " + Math.round(100 * d.level) + "% intervals)");
    const t = d.hit_rate_test;
    $("stops-note").textContent = d.records + " records; " + d.not_recorded + " with the group not recorded" +
      (Object.keys(d.unmatched || {}).length ? "; groups without a population row: " + Object.keys(d.unmatched).join(", ") : "") +
      (t ? ". Hit-rate test: χ² = " + CL.fmt(t.chi2, 2) + ", p = " + CL.fmt(t.p_value, 4) : "") +
      ". Residential population is a benchmark with known limits (see docs/fairness.md).";
  }

  async function run(ev) {
    if (ev) ev.preventDefault();
    if (CL.session.role !== "analyst" && CL.session.role !== "admin") {
      $("stops-note").textContent = "The stops and arrests audit is for analysts and administrators; your role is " +
        (CL.session.role || "unknown") + ".";
      return;
    }
    if (!S.population || !S.population.length) {
      $("stops-note").textContent = "Choose a population CSV (columns group,population) first.";
      return;
    }
    const kind = $("s-kind").value;
    const body = { population: S.population, group: $("s-group").value, kinds: kind === "both" ? ["stop", "arrest"] : [kind] };
    if ($("s-ref").value.trim()) body.reference = $("s-ref").value.trim();
    const p = CL.period();
    if (p.from) body.from = p.from;
    if (p.to) body.to = p.to;
    $("stops-note").textContent = "Computing…";
    try {
      draw(await CL.api("/fairness/stops", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body) }));
    } catch (e) {
      if (e.message !== "401") $("stops-note").textContent = "Could not compute the audit: " + e.message;
    }
  }

  function init() {
    $("s-pop").addEventListener("change", () => {
      const f = $("s-pop").files[0];
      if (f) f.text().then((text) => { S.population = readCsv(text); $("stops-note").textContent = S.population.length + " groups with residents loaded."; });
    });
    $("stops-form").addEventListener("submit", run);
  }

  CL.stops = { run, readCsv };
  document.addEventListener("DOMContentLoaded", init);
})(window.CL);
