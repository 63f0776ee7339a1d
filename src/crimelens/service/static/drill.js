/* Drill-down: the incidents behind a clicked cell, hot spot, area or alert, paged; personal fields
   only for roles allowed, after the user states a reason (sent as X-Access-Reason, audited);
   from an incident, its near-repeat neighbours. */
"use strict";
(function (CL) {
  const $ = CL.$;
  const SIZE = 15;
  let spec = null, offset = 0, cursors = [null], reason = null, lastRows = [];

  function headers() { return reason ? { "X-Access-Reason": reason } : {}; }

  function fieldsParam(p) { p.set("fields", reason ? "personal" : "standard"); return p; }

  async function fetchPage() {
    if (spec.box) {
      const p = fieldsParam(new URLSearchParams(spec.params));
      for (const k of ["west", "south", "east", "north"]) p.set(k, spec.box[k]);
      p.set("limit", SIZE); p.set("offset", offset);
      const d = await CL.api("/drilldown/cell?" + p, { headers: headers() });
      return { items: d.items, total: d.total, more: offset + d.items.length < d.total };
    }
    const p = fieldsParam(new URLSearchParams(spec.params));
    p.set("limit", SIZE);
    const cur = cursors[cursors.length - 1];
    if (cur) p.set("cursor", cur);
    const d = await CL.api("/incidents?" + p, { headers: headers() });
    spec.next = d.next_cursor;
    return { items: d.items, total: null, more: !!d.next_cursor };
  }

  function rowOf(r) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = "Near repeats";
    b.setAttribute("aria-label", "Near repeats of incident " + r.source + " " + r.incident_id);
    b.addEventListener("click", () => nearRepeats(r));
    const row = [(r.occurred_at || "").slice(0, 16).replace("T", " "), r.category, r.offense, r.district,
      r.address, r.source + " " + r.incident_id];
    if (reason) row.push(r.suspect, r.victim, r.narrative);
    row.push(b);
    return row;
  }

  async function draw() {
    $("drill-page").textContent = "Loading…";
    try {
      const d = await fetchPage();
      lastRows = d.items;
      const head = ["when", "category", "offence", "district", "address", "record"];
      if (reason) head.push("suspect", "victim", "narrative");
      head.push("neighbours");
      const n = spec.box ? offset : (cursors.length - 1) * SIZE;
      CL.table("drill-table", head, d.items.map(rowOf),
        (reason ? "Personal fields shown (reason recorded). " : "") + spec.title);
      $("drill-page").textContent = d.items.length ? "Incidents " + (n + 1) + "–" + (n + d.items.length) +
        (d.total !== null ? " of " + d.total : "") : "No incidents.";
      $("drill-prev").disabled = spec.box ? offset === 0 : cursors.length === 1;
      $("drill-next").disabled = !d.more;
    } catch (e) {
      if (e.message !== "401") $("drill-page").textContent = "Could not load: " + e.message;
    }
  }

  /** Open the panel on ``s``: {title, params (URLSearchParams of filters), box?: {west, south, east, north}}. */
  function open(s) {
    spec = s; offset = 0; cursors = [null]; reason = null;
    $("drill").hidden = false;
    $("drill-what").textContent = s.title;
    $("drill-personal").hidden = !(CL.session.role === "analyst" || CL.session.role === "admin");
    $("drill-reason").hidden = true;
    $("nr-title").hidden = true; $("nr-table").hidden = true;
    $("drill-title").focus();
    return draw();
  }

  async function nearRepeats(r) {
    const p = fieldsParam(new URLSearchParams({ distance_m: "200", days: "14" }));
    try {
      const d = await CL.api("/drilldown/near-repeats/" + encodeURIComponent(r.source) + "/" +
        encodeURIComponent(r.incident_id) + "?" + p, { headers: headers() });
      CL.table("nr-table", ["when", "category", "distance (m)", "days apart", "record"],
        d.items.map((n) => [(n.incident.occurred_at || "").slice(0, 16).replace("T", " "), n.incident.category,
          CL.fmt(n.distance_m), CL.fmt(n.days_apart, 1), n.incident.source + " " + n.incident.incident_id]),
        d.items.length + " incidents within 200 m and 14 days of " + r.source + " " + r.incident_id);
      $("nr-title").hidden = false; $("nr-table").hidden = false;
    } catch (e) {
      if (e.message !== "401") $("drill-page").textContent = "Could not load near repeats: " + e.message;
    }
  }

  function init() {
    $("drill-close").addEventListener("click", () => { $("drill").hidden = true; spec = null; });
    $("drill-next").addEventListener("click", () => {
      if (spec.box) offset += SIZE; else cursors.push(spec.next);
      draw();
    });
    $("drill-prev").addEventListener("click", () => {
      if (spec.box) offset = Math.max(0, offset - SIZE); else if (cursors.length > 1) cursors.pop();
      draw();
    });
    $("drill-personal").addEventListener("click", () => { $("drill-reason").hidden = false; $("drill-reason-text").focus(); });
    $("drill-reason").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = $("drill-reason-text").value.trim();
      if (text.length < 5) return;
      reason = text; $("drill-reason").hidden = true; $("drill-reason-text").value = "";
      offset = 0; cursors = [null];
      draw();
    });
  }

  CL.drill = { open, init, rows: () => lastRows, SIZE };
})(window.CL);
