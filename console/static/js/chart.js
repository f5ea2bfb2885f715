// One panel's time series, drawn with uPlot from query_range answers.

import { fmtClock, fmtValue, h } from "./dom.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#393b79", "#bcbd22"];
export const charts = new Map(); // panel title → {plot, series}; what a test or a reader inspects

/** ``{{label}}`` in a legend filled from the series' labels (Grafana's legend format). */
export function legendName(legend, metric) {
  const named = legend ? legend.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => metric[name] ?? "") : "";
  if (named) return named;
  // No legend, or one naming labels the series lacks: the series' own name and labels.
  const labels = Object.entries(metric).filter(([k]) => k !== "__name__");
  return `${metric.__name__ || ""}{${labels.map(([k, v]) => `${k}="${v}"`).join(", ")}}`;
}

/** Series on the step grid: x = start, start + step, … end; a missing or non-finite point is a gap. */
export function toColumns(answers, start, end, step) {
  const xs = [];
  for (let t = start; t <= end; t += step) xs.push(t);
  const series = [];
  for (const { legend, result } of answers) {
    for (const r of result) {
      const ys = new Array(xs.length).fill(null);
      for (const [t, v] of r.values) {
        const i = Math.round((t - start) / step);
        const y = Number.parseFloat(v);
        if (i >= 0 && i < xs.length && Number.isFinite(y)) ys[i] = y;
      }
      series.push({ label: legendName(legend, r.metric), ys });
    }
  }
  return { xs, series };
}

export function drawChart(container, title, unit, max, columns, start, end, step) {
  const { xs, series } = columns;
  const sparse = xs.length <= 60;
  const lo = start === end ? start - step : start;
  const hi = start === end ? end + step : end;
  const opts = {
    width: Math.max(300, container.clientWidth - 4),
    height: 190,
    series: [
      { value: (u, v) => (v == null ? "" : fmtClock(v * 1000)) },
      ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        points: { show: sparse, size: 5 },
        spanGaps: false,
        value: (u, v) => fmtValue(v, unit),
      })),
    ],
    scales: {
      x: { time: true, range: [lo, hi] },
      y: {
        range: (u, dmin, dmax) => {
          const top = max ?? (dmax > 0 ? dmax * 1.1 : 1);
          return [Math.min(0, dmin ?? 0), top];
        },
      },
    },
    axes: [
      { stroke: "#555", grid: { stroke: "#eee" } },
      { stroke: "#555", grid: { stroke: "#eee" }, size: 72, values: (u, vals) => vals.map((v) => fmtValue(v, unit)) },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new window.uPlot(opts, [xs, ...series.map((s) => s.ys)], container);
  charts.set(title, { plot, series });
  return plot;
}

export function emptyPanel(text) {
  return h("div", { class: "empty" }, text);
}
