// A service's Monitoring view (the guide's table 1-58): periods, spans, drill-down, a chart per panel.

import { prom, settings } from "./api.js";
import { charts, drawChart, emptyPanel, toColumns } from "./chart.js";
import {
  badge,
  clear,
  debounce,
  durationLabel,
  durationSeconds,
  fmtDateTime,
  h,
  message,
  promString,
  regexLiteral,
} from "./dom.js";
import { STATUS, statusEvents, statusName } from "./services.js";

const MAX_POINTS = 1500; // beyond it, a point every few periods (15 days at 1 min are 21,600 periods)

const END_ALIGN_S = 10; // the scrape interval: a refresh within it asks for the same points

/**
 * The page's time grid: a point every ``step`` (the period, or a multiple of it over long spans),
 * the last one now, each the statistic of the period ending there.
 */
export function timeGrid(period, span, nowS) {
  const periodS = durationSeconds(period);
  const spanS = durationSeconds(span);
  const step = periodS * Math.max(1, Math.ceil(spanS / periodS / MAX_POINTS));
  const end = Math.floor(nowS / END_ALIGN_S) * END_ALIGN_S;
  const start = end - Math.floor(spanS / step) * step;
  return { start, end, step };
}

/** A dashboard query with the page's choices in place of Grafana's variables. */
export function fillVariables(expr, values) {
  return expr.replace(/\$(\w+)/g, (whole, name) => (name in values ? values[name] : whole));
}

function matchValue(value) {
  return value ? promString(regexLiteral(value)) : ".*";
}

function level(state) {
  if (state.pod) return "pod";
  if (state.instance) return "instance";
  if (state.group) return "deployment";
  return "service";
}

function select(id, label, options, value, onChange) {
  const el = h(
    "select",
    { id, onchange: () => onChange(el.value) },
    h("option", { value: "" }, "All"),
    options.map((o) => h("option", { value: o, selected: o === value }, o)),
  );
  return h("label", { class: "field", for: id }, h("span", {}, label), el);
}

export async function renderMonitor(page) {
  const p = page.params;
  const state = {
    id: p.get("id") || "",
    group: p.get("group") || "",
    instance: p.get("instance") || "",
    pod: p.get("pod") || "",
    period: settings.periods.includes(p.get("period")) ? p.get("period") : settings.periods[0],
    span: settings.spans.includes(p.get("span")) ? p.get("span") : settings.spans[0],
    auto: p.get("auto") !== "off",
  };
  const heading = h("h1", {}, state.id);
  const statusHolder = h("span", { class: "heading-status" });
  const toolbar = h("div", { class: "toolbar", role: "group", "aria-label": "View" });
  const note = h("div", { "aria-live": "polite" });
  const updated = h("span", { class: "muted", "aria-live": "polite" });
  const panels = h("div", { id: "panels", dataset: { state: "loading", generation: "0" } });
  page.main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/services" }, "Services"), " › ", state.id),
    h("div", { class: "heading" }, heading, statusHolder),
    toolbar,
    note,
    panels,
  );
  if (!state.id) {
    clear(note).append(message("Pick a service on the Services page.", "error"));
    return;
  }

  let topology = [];
  let generation = 0;
  const plots = [];

  async function loadTopology() {
    const end = Math.floor(Date.now() / 1000);
    const match = `up{service_id="${promString(state.id)}"}`;
    topology = await prom.series(match, end - durationSeconds(state.span), end);
    const name = topology.find((s) => s.service_name)?.service_name;
    heading.textContent = name || state.id;
    page.main.querySelector(".crumbs").lastChild.textContent = name || state.id;
    const announced = (await statusEvents(state.id)).map((e) => STATUS.exec(e.message)).find(Boolean);
    clear(statusHolder).append(announced ? badge(statusName(announced[2])) : "");
  }

  function options(label, filter) {
    return [...new Set(topology.filter(filter).map((s) => s[label]).filter(Boolean))].sort();
  }

  function renderToolbar() {
    clear(toolbar);
    const change = (patch) => {
      Object.assign(state, patch);
      save();
      renderToolbar();
      draw();
    };
    toolbar.append(
      h(
        "div",
        { class: "drill", role: "group", "aria-label": "Drill down" },
        select("drill-group", "Deployment", options("group_id", () => true), state.group, (v) =>
          change({ group: v, instance: "", pod: "" }),
        ),
        select(
          "drill-instance",
          "Instance",
          options("instance_name", (s) => !state.group || s.group_id === state.group),
          state.instance,
          (v) => change({ instance: v, pod: "" }),
        ),
        select(
          "drill-pod",
          "Pod",
          options(
            "source",
            (s) => (!state.group || s.group_id === state.group) && (!state.instance || s.instance_name === state.instance),
          ),
          state.pod,
          (v) => change({ pod: v }),
        ),
      ),
      h(
        "div",
        { class: "periods", role: "group", "aria-label": "Statistical period" },
        h("span", { class: "field-label" }, "Period"),
        settings.periods.map((period) =>
          h(
            "button",
            {
              type: "button",
              class: "toggle",
              dataset: { period },
              "aria-pressed": String(period === state.period),
              onclick: () => change({ period }),
            },
            durationLabel(period),
          ),
        ),
      ),
      h(
        "label",
        { class: "field", for: "span" },
        h("span", {}, "Span"),
        (() => {
          const el = h(
            "select",
            { id: "span", onchange: () => change({ span: el.value }) },
            settings.spans.map((span) => h("option", { value: span, selected: span === state.span }, `Last ${durationLabel(span)}`)),
          );
          return el;
        })(),
      ),
      h("button", { type: "button", id: "refresh", onclick: () => draw() }, "Refresh"),
      h(
        "label",
        { class: "check" },
        (() => {
          const el = h("input", {
            type: "checkbox",
            id: "auto-refresh",
            checked: state.auto,
            onchange: () => {
              state.auto = el.checked;
              save();
            },
          });
          return el;
        })(),
        ` every ${durationLabel(settings.refresh)}`,
      ),
      updated,
    );
  }

  function save() {
    page.setParams({
      id: state.id,
      group: state.group,
      instance: state.instance,
      pod: state.pod,
      period: state.period,
      span: state.span,
      auto: state.auto ? "" : "off",
    });
  }

  async function drawPanel(spec, holder, values, grid, mine) {
    const { start, end, step } = grid;
    try {
      const answers = await Promise.all(
        spec.queries.map(async (q) => ({
          legend: q.legend,
          result: await prom.range(fillVariables(q.expr, values), start, end, step),
        })),
      );
      if (mine !== generation) return;
      const columns = toColumns(answers, start, end, step);
      const box = holder.querySelector(".plot");
      clear(box);
      if (!columns.series.some((s) => s.ys.some((y) => y !== null))) {
        box.append(emptyPanel("No data in this span"));
        charts.set(spec.title, { plot: null, series: columns.series });
        holder.dataset.state = "empty";
        return;
      }
      plots.push(drawChart(box, spec.title, spec.unit, spec.max, columns, start, end, step));
      holder.dataset.state = "drawn";
    } catch (err) {
      if (mine !== generation) return;
      clear(holder.querySelector(".plot")).append(message(err.message, "error"));
      holder.dataset.state = "error";
    }
  }

  async function draw() {
    generation += 1;
    const mine = generation;
    plots.splice(0).forEach((plot) => plot.destroy());
    charts.clear();
    const lvl = level(state);
    const grid = timeGrid(state.period, state.span, Date.now() / 1000);
    const project = topology.find((s) => s.project_id)?.project_id || "";
    const values = {
      project_id: matchValue(project),
      service_id: matchValue(state.id),
      group_id: matchValue(state.group),
      instance: matchValue(state.instance),
      pod: matchValue(state.pod),
      period: state.period,
      __range: state.span, // Grafana's whole-span variable (the SLO row's attainment over it)
    };
    Object.assign(panels.dataset, {
      state: "loading",
      generation: String(mine),
      level: lvl,
      start: String(grid.start),
      end: String(grid.end),
      step: String(grid.step),
      period: state.period,
    });
    clear(note);
    if (lvl !== "service") {
      note.append(message("Below service level only resource usage is shown, as on the guide's console; one line per pod."));
    }
    if (grid.step !== durationSeconds(state.period)) {
      note.append(message(`A point every ${grid.step / 60} min (each the ${durationLabel(state.period)} period ending there): at most ${MAX_POINTS} points per line.`));
    }
    clear(panels);
    const work = [];
    for (const row of settings.views[lvl]) {
      const grid_el = h("div", { class: "panel-grid" });
      panels.append(h("section", { class: "row", "aria-label": row.title }, h("h2", {}, row.title), grid_el));
      for (const spec of row.panels) {
        const holder = h(
          "figure",
          { class: "panel", dataset: { title: spec.title, state: "loading" } },
          h("figcaption", {}, h("span", { class: "panel-title" }, spec.title), h("span", { class: "info", title: spec.description, tabindex: "0", "aria-label": spec.description }, "i")),
          h("div", { class: "plot" }, emptyPanel("Loading…")),
        );
        grid_el.append(holder);
        work.push(drawPanel(spec, holder, values, grid, mine));
      }
    }
    await Promise.all(work);
    if (mine !== generation || page.left) return;
    panels.dataset.state = "ready";
    clear(updated).append(`Updated ${fmtDateTime(Date.now())} · ${fmtDateTime(grid.start * 1000)} – ${fmtDateTime(grid.end * 1000)}`);
  }

  try {
    await loadTopology();
  } catch (err) {
    clear(note).append(message(`Cannot load the service: ${err.message}`, "error"));
    return;
  }
  renderToolbar();
  await draw();
  page.every(durationSeconds(settings.refresh) * 1000, () => {
    if (state.auto) draw();
  });
  const resize = debounce(() => {
    for (const plot of plots) plot.setSize({ width: Math.max(300, plot.root.parentElement.clientWidth - 4), height: 190 });
  }, 200);
  window.addEventListener("resize", resize);
  page.onLeave(() => {
    window.removeEventListener("resize", resize);
    generation += 1;
    plots.splice(0).forEach((plot) => plot.destroy());
    charts.clear();
  });
}
