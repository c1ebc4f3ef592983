// Charts of each page, drawn with Plotly.js from the page's data (the JSON the server
// embeds). A click on a run point opens the run; a click on a step bar opens the step.

export const STATUS_COLOURS = {
  succeeded: "#2e7d32", failed: "#c62828", running: "#1565c0", cancelled: "#757575",
};
const CONFIG = { responsive: true, displaylogo: false, scrollZoom: false,
                 modeBarButtonsToRemove: ["lasso2d", "select2d"] };

function layout(extra = {}) {
  const { timeAxis, ...rest } = extra;
  const out = {
    margin: { l: 56, r: 12, t: 8, b: 40 }, height: 300, hovermode: "closest",
    legend: { orientation: "h", y: -0.2 }, uirevision: location.pathname + location.search,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, sans-serif", size: 12 }, ...rest,
  };
  if (timeAxis && window.innerWidth < 600) {
    // A phone: fewer, level time ticks, and the legend well below them.
    out.xaxis = { ...(out.xaxis || {}), nticks: 4, tickangle: 0, automargin: true };
    out.legend = { ...out.legend, y: -0.35 };
    out.height = Math.max(out.height, 320);
  }
  return out;
}

function draw(id, traces, extraLayout, onClick) {
  const node = document.getElementById(id);
  if (!node || !window.Plotly) return;
  if (!traces.length || traces.every((t) => !(t.x || []).length)) {
    window.Plotly.purge(node);
    node.innerHTML = '<p class="empty">Nothing to chart in this range.</p>';
    node.dataset.points = "0";
    return;
  }
  if (node.querySelector(".empty")) node.innerHTML = "";
  window.Plotly.react(node, traces, layout(extraLayout), CONFIG);
  node.dataset.points = String(traces.reduce((n, t) => n + (t.x || []).length, 0));
  if (onClick && !node.dataset.wired) {
    node.dataset.wired = "1";
    node.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && point.customdata) location.href = onClick(point.customdata);
    });
  }
}

function byStatus(rows, x, y) {
  const groups = {};
  for (const row of rows) (groups[row.status] ||= []).push(row);
  return Object.entries(groups).map(([status, part]) => ({
    type: "scatter", mode: "markers", name: status,
    x: part.map((r) => r[x]), y: part.map((r) => r[y] / 1000),
    customdata: part.map((r) => r.run_id),
    marker: { color: STATUS_COLOURS[status] || "#6a1b9a", size: 8 },
    hovertemplate: `%{x|%Y-%m-%d %H:%M}<br>%{y:.3s} s<br>${status}<extra></extra>`,
  }));
}

function withRange(path) {
  // Keep the page's time range when drilling down (the link stays shareable).
  const params = new URLSearchParams(location.search);
  const keep = new URLSearchParams();
  for (const key of ["range", "from", "to", "refresh"]) {
    if (params.get(key)) keep.set(key, params.get(key));
  }
  const query = keep.toString();
  return query ? `${path}?${query}` : path;
}

const PAGES = {
  overview(data) {
    const rows = data.tables.recipes || [];
    const bar = (key, name, colour) => ({
      type: "bar", name, x: rows.map((r) => r.recipe), y: rows.map((r) => (r[key] || 0) / 1000),
      customdata: rows.map((r) => r.recipe), marker: { color: colour },
      hovertemplate: `%{x}<br>${name}: %{y:.3s} s<extra></extra>`,
    });
    draw("chart-recipes", [bar("p50_ms", "p50", "#5c6bc0"), bar("p95_ms", "p95", "#ef6c00")],
         { barmode: "group", yaxis: { title: { text: "duration (s)" } } },
         (recipe) => withRange(`/recipes/${encodeURIComponent(recipe)}`));
  },
  recipe(data) {
    draw("chart-runs", byStatus(data.tables.all_runs || [], "started_at", "duration_ms"),
         { timeAxis: true, yaxis: { title: { text: "duration (s)" }, rangemode: "tozero" } },
         (runId) => `/runs/${runId}`);
  },
  step(data) {
    draw("chart-step", byStatus(data.tables.executions || [], "started_at", "duration_ms"),
         { timeAxis: true, yaxis: { title: { text: "duration (s)" }, rangemode: "tozero" } },
         (runId) => `/runs/${runId}`);
  },
  run(data) {
    const rows = data.tables.timeline || [];
    const recipe = data.recipe;
    const groups = {};
    for (const row of rows) (groups[row.status] ||= []).push(row);
    const label = (r) => (r.attempt > 1 ? `${r.step} (#${r.attempt})` : r.step);
    const traces = Object.entries(groups).map(([status, part]) => ({
      type: "bar", orientation: "h", name: status,
      y: part.map(label), base: part.map((r) => (r.start_offset_ms || 0) / 1000),
      x: part.map((r) => (r.duration_ms ?? Math.max(0, Date.now() -
        Date.parse(data.run.started_at) - (r.start_offset_ms || 0))) / 1000),
      customdata: part.map((r) => r.step),
      marker: { color: STATUS_COLOURS[status] || "#6a1b9a" },
      hovertemplate: "%{y}<br>from %{base:.3s} s for %{x:.3s} s<extra>" + status + "</extra>",
    }));
    const order = rows.map(label);
    draw("chart-timeline", traces, {
      barmode: "overlay", height: Math.max(220, 60 + 32 * order.length),
      margin: { l: 110, r: 12, t: 8, b: 40 },
      xaxis: { title: { text: "seconds from the run's start" }, rangemode: "tozero" },
      yaxis: { categoryorder: "array", categoryarray: [...order].reverse(), automargin: true },
    }, (step) => `/recipes/${encodeURIComponent(recipe)}/steps/${encodeURIComponent(step)}`);
  },
  metrics(data) {
    const series = {};
    for (const row of data.tables.points || []) (series[row.series] ||= []).push(row);
    const traces = Object.entries(series).map(([name, part]) => ({
      type: "scatter", mode: part.length > 100 ? "lines" : "lines+markers", name,
      x: part.map((r) => r.ts), y: part.map((r) => r.value),
    }));
    draw("chart-metrics", traces, { timeAxis: true, yaxis: { title: { text: data.metric || "" } } });
  },
};

// A saved or built-in dashboard: each panel's figure as the dashboards area rendered it.
PAGES.dashboard = (data) => {
  for (const panel of data.panels || []) {
    const node = document.getElementById(`panel-${panel.id}`);
    if (!node || !panel.figure || !window.Plotly) continue;
    const figure = panel.figure;
    const given = figure.layout || {};
    // automargin: category labels (a Gantt's step names) get the room they need.
    window.Plotly.react(node, figure.data || [], layout({ ...given,
      yaxis: { ...(given.yaxis || {}), automargin: true },
      title: undefined, height: 300, margin: { l: 56, r: 12, t: 8, b: 40 } }), CONFIG);
  }
};

export function drawCharts(data, page) {
  if (data && data.tables && PAGES[page]) PAGES[page](data);
}

// New points of the metrics page since the last one shown, merged by (series, ts).
export function mergePoints(data, fresh) {
  const rows = data.tables.points || [];
  const index = new Map(rows.map((r, i) => [`${r.series}\u0000${r.ts}`, i]));
  for (const row of fresh) {
    const key = `${row.series}\u0000${row.ts}`;
    if (index.has(key)) rows[index.get(key)] = row;
    else { index.set(key, rows.length); rows.push(row); }
  }
  rows.sort((a, b) => (a.series < b.series ? -1 : a.series > b.series ? 1 :
    Date.parse(a.ts) - Date.parse(b.ts)));
  data.tables.points = rows;
}
