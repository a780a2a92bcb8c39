/// The dashboard's two static files, compiled into the binary so the pages need nothing from the
/// network or the file system: one style sheet (light and dark through `prefers-color-scheme`) and
/// one small script that keeps a running run's page up to date.
public enum Assets {
    /// `/assets/dashboard.css`.
    public static let stylesheet = #"""
    :root {
      color-scheme: light dark;
      --bg: #ffffff; --fg: #1d2127; --muted: #5f6b7a; --line: #d9dee5; --panel: #f5f7fa; --accent: #2459c7;
      --good: #17803d; --bad: #c0262d; --warn: #a15c00; --info: #2459c7;
      --heat0: #f8d7d3; --heat1: #fbe6cf; --heat2: #f7f1cf; --heat3: #dcefd6; --heat4: #c3e6c8;
      --ins: #d6f2dc; --del: #f9d9d9; --bar: #5b7fd6;
      font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 15px;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #14171c; --fg: #e3e7ec; --muted: #9aa5b3; --line: #343a44; --panel: #1c2027; --accent: #7aa2ff;
        --good: #5fd38a; --bad: #ff7b7b; --warn: #f0b45a; --info: #7aa2ff;
        --heat0: #5a2626; --heat1: #5a3f22; --heat2: #4f4a22; --heat3: #27482e; --heat4: #1f5530;
        --ins: #1f4a2b; --del: #5a2626; --bar: #7aa2ff;
      }
    }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45; }
    a { color: var(--accent); }
    a:focus-visible, button:focus-visible, summary:focus-visible, input:focus-visible, select:focus-visible {
      outline: 3px solid var(--accent); outline-offset: 2px;
    }
    .skip { position: absolute; left: -999px; }
    .skip:focus { left: 8px; top: 8px; background: var(--panel); padding: 4px 8px; z-index: 2; }
    header.top { display: flex; justify-content: space-between; align-items: center; gap: 16px;
      padding: 10px 24px; border-bottom: 1px solid var(--line); background: var(--panel); }
    header.top nav { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
    .brand { font-weight: 700; text-decoration: none; }
    .sep, .store, .muted { color: var(--muted); }
    .store { font-family: ui-monospace, monospace; font-size: 13px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 40%; }
    main { padding: 8px 24px 48px; max-width: 1680px; }
    h1 { font-size: 24px; margin: 16px 0 8px; overflow-wrap: anywhere; }
    h2 { font-size: 18px; margin: 28px 0 10px; }
    .lead { font-size: 16px; overflow-wrap: anywhere; }
    .small { font-size: 13px; }
    section { margin-top: 8px; }
    .facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 12px 0; }
    .facts dt { color: var(--muted); }
    .facts dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
    .table-wrap { overflow-x: auto; }
    table.data { border-collapse: collapse; width: 100%; font-size: 14px; }
    table.data caption { text-align: left; color: var(--muted); padding: 4px 0; }
    table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
    table.data th { background: var(--panel); font-weight: 600; position: sticky; top: 0; }
    table.data td { max-width: 420px; overflow-wrap: anywhere; }
    table.items td { max-width: 320px; }
    table.compare td { min-width: 160px; }
    .num { text-align: right !important; font-variant-numeric: tabular-nums; }
    tbody tr:hover { background: var(--panel); }
    tr:target, td :target { outline: 2px solid var(--accent); }
    pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font-size: 13px; font-family: ui-monospace, monospace;
      background: var(--panel); padding: 6px 8px; border-radius: 4px; max-height: 480px; overflow: auto; }
    .text { white-space: pre-wrap; overflow-wrap: anywhere; }
    .cell-text { white-space: pre-wrap; }
    details.fold > summary { cursor: pointer; color: var(--fg); white-space: pre-wrap; overflow-wrap: anywhere; }
    details.fold[open] > summary { color: var(--muted); }
    .status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; border: 1px solid currentColor; }
    .status-finished { color: var(--good); }
    .status-running { color: var(--info); }
    .status-interrupted { color: var(--warn); }
    .status-failed { color: var(--bad); }
    .status-other { color: var(--muted); }
    .bad, .error-text { color: var(--bad); }
    .warn { color: var(--warn); }
    .live { background: var(--panel); border-left: 4px solid var(--info); padding: 6px 10px; }
    .means { display: flex; flex-wrap: wrap; gap: 4px 10px; }
    .mean { white-space: nowrap; }
    .score { display: inline-block; padding: 1px 6px; border-radius: 4px; font-variant-numeric: tabular-nums; }
    .heat-0 { background: var(--heat0); } .heat-1 { background: var(--heat1); } .heat-2 { background: var(--heat2); }
    .heat-3 { background: var(--heat3); } .heat-4 { background: var(--heat4); }
    .unscored { color: var(--warn); font-style: italic; }
    .filters { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: end; margin: 8px 0 12px; padding: 8px 10px;
      background: var(--panel); border-radius: 6px; }
    .filters label { display: inline-flex; gap: 4px; align-items: center; }
    .login label { gap: 10px; }
    input, select, button { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 3px 6px; }
    input[type=number] { width: 90px; }
    button, .button { cursor: pointer; background: var(--accent); color: var(--bg); border-color: var(--accent); padding: 4px 12px;
      border-radius: 4px; text-decoration: none; font-weight: 600; }
    .pager { display: flex; gap: 12px; align-items: center; margin: 12px 0; }
    form.sign-out { margin: 0; } form.sign-out button { padding: 2px 10px; }
    .charts { display: flex; flex-wrap: wrap; gap: 12px; }
    figure.chart-box { margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
    figure.chart-box figcaption { font-size: 13px; color: var(--muted); }
    svg.chart { max-width: 100%; height: auto; display: block; }
    svg .bar { fill: var(--bar); }
    svg .axis { fill: var(--muted); font-size: 10px; }
    svg .label { fill: var(--fg); font-size: 12px; }
    svg .axis-line { stroke: var(--line); }
    svg .zero { stroke: var(--muted); stroke-dasharray: 3 3; }
    svg .trend { stroke: var(--muted); stroke-width: 1; }
    svg .interval { stroke: var(--fg); stroke-width: 1.5; }
    svg .point { fill: var(--accent); }
    svg .interval.regression { stroke: var(--bad); } svg .point.regression { fill: var(--bad); }
    svg .interval.improvement { stroke: var(--good); } svg .point.improvement { fill: var(--good); }
    svg .point.noise { fill: var(--muted); }
    .verdict { font-weight: 600; }
    .verdict.regression { color: var(--bad); } .verdict.improvement { color: var(--good); } .verdict.noise { color: var(--muted); }
    .label { display: inline-block; padding: 1px 6px; border-radius: 4px; font-size: 13px; white-space: nowrap; background: var(--panel); }
    .label-regressed, .label-new-error { background: var(--heat0); }
    .label-improved, .label-fixed-error { background: var(--heat4); }
    .chips { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 4px; }
    .score-chip, .figure { font-size: 12px; padding: 0 5px; border-radius: 4px; background: var(--panel); white-space: nowrap; }
    .change-regressed, .change-new-error { background: var(--heat0); }
    .change-improved, .change-fixed-error { background: var(--heat4); }
    ins { background: var(--ins); text-decoration: none; }
    del { background: var(--del); }
    .trace-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 20px; align-items: start; }
    .trace-column { min-width: 0; }
    details.observation { border-bottom: 1px solid var(--line); }
    details.observation > summary { display: grid; grid-template-columns: minmax(0, 1fr) 240px 80px; gap: 8px; align-items: center;
      cursor: pointer; padding: 4px 0; }
    details.observation > .facts { padding: 0 0 10px 16px; }
    .obs-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .depth-1 { padding-left: 16px; } .depth-2 { padding-left: 32px; } .depth-3 { padding-left: 48px; }
    .depth-4 { padding-left: 64px; } .depth-5 { padding-left: 80px; } .depth-6 { padding-left: 96px; }
    .kind { font-size: 11px; text-transform: uppercase; color: var(--muted); }
    .duration { text-align: right; font-variant-numeric: tabular-nums; font-size: 13px; }
    svg.waterfall .track { fill: var(--panel); }
    svg.waterfall .span-bar { fill: var(--bar); }
    svg.waterfall .span-bar.generation { fill: var(--good); }
    svg.waterfall .span-bar.event { fill: var(--warn); }
    svg.waterfall .span-bar.error { fill: var(--bad); }
    .level-error { color: var(--bad); } .level-warning { color: var(--warn); }
    @media (max-width: 1100px) { main { padding: 8px 12px 32px; } table.data td { max-width: 260px; } }
    """#

    /// `/assets/dashboard.js`: on a running run's page, polls the run's progress and reloads the page
    /// when the run ends. Nothing else needs script.
    public static let script = #"""
    (function () {
      "use strict";
      var live = document.getElementById("live");
      if (!live) { return; }
      var run = live.getAttribute("data-run");
      var items = document.getElementById("live-items");
      var errors = document.getElementById("live-errors");
      function poll() {
        fetch("/api/runs/" + encodeURIComponent(run) + "/progress", { headers: { "Accept": "application/json" } })
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (progress) {
            if (!progress) { return; }
            if (progress.status !== "running") { window.location.reload(); return; }
            var total = progress.expectedItems ? " of " + progress.expectedItems : "";
            live.textContent = "Running: " + progress.itemCount + total + " items so far. This page updates itself.";
            if (items) { items.textContent = String(progress.itemCount); }
            if (errors) { errors.textContent = String(progress.errorCount); }
          })
          .catch(function () {})
          .then(function () { window.setTimeout(poll, 1000); });
      }
      window.setTimeout(poll, 1000);
    })();
    """#
}
