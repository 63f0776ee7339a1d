/* The time slider and play control: weeks of the data; moving it redraws the map, charts and
   CompStat for the window ending that week (1, 4 or 13 weeks; "all dates" turns it off). */
"use strict";
(function (CL) {
  const $ = CL.$;
  let timer = null, busy = false, again = false, redraw = null, ahead = null;

  /** Load the weeks the filters span; keep the slider where it was when that week still exists. */
  async function load() {
    const p = CL.filterParams();
    const d = await CL.api("/aggregates/timeseries?" + p + "&period=week");
    const keep = CL.state.weeks.length ? CL.state.weeks[Number($("t-week").value)] : null;
    if (keep && !CL.state.pendingWeek) CL.state.pendingWeek = keep;
    CL.setWeeks(d.points.map((r) => r.period_start.slice(0, 10)));
    label();
  }

  function label() {
    const on = Number($("t-window").value) > 0 && CL.state.weeks.length > 0;
    $("t-week").disabled = !on; $("play").disabled = !on;
    $("t-label").textContent = CL.period().label;
    $("t-week").setAttribute("aria-valuetext", CL.period().label);
  }

  /** Redraw for the slider's week; a move made while a redraw runs is drawn right after it
     (never dropped, so the last position always wins). */
  async function step() {
    label();
    if (busy) { again = true; return; }
    busy = true;
    try {
      do { again = false; await redraw(); } while (again);
    } finally { busy = false; }
  }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    $("play").textContent = "Play"; $("play").setAttribute("aria-pressed", "false");
  }

  function play() {
    if (timer) { stop(); return; }
    const s = $("t-week");
    if (Number(s.value) >= Number(s.max)) s.value = "0";
    $("play").textContent = "Pause"; $("play").setAttribute("aria-pressed", "true");
    const tick = async () => {
      await step();
      if (!timer) return;
      if (Number(s.value) >= Number(s.max)) { stop(); return; }
      if (ahead) ahead(periodAt(Number(s.value) + 1));  // the next week loads while this one shows
      s.value = String(Number(s.value) + 1);
      timer = setTimeout(tick, 700);
    };
    timer = setTimeout(tick, 0);
  }

  /** The period the slider would select at week ``i``. */
  function periodAt(i) {
    const end = CL.addDays(CL.state.weeks[i], 7);
    return { from: CL.addDays(end, -7 * Number($("t-window").value)), to: end };
  }

  /** ``onChange``: redraw for the slider's period; ``onAhead(period)``: ask for a period's data
      ahead of showing it (during playback). */
  function init(onChange, onAhead) {
    redraw = onChange; ahead = onAhead || null;
    $("t-week").addEventListener("input", label);
    $("t-week").addEventListener("change", () => { stop(); step(); });
    $("t-window").addEventListener("change", () => { stop(); step(); });
    $("t-compare").addEventListener("change", () => step());
    $("play").addEventListener("click", play);
  }

  CL.timeline = { init, load, label, stop, isBusy: () => busy };
})(window.CL);
