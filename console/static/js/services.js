// Services: each service's status, healthy pods, QPS, 5xx ratio, TTFT TP99 and latest event.

import { getJson, prom } from "./api.js";
import { badge, clear, fmtDateTime, fmtValue, h, message } from "./dom.js";

const SPAN_S = 900; // the console's default view: the last 15 minutes
export const STATUS = /status (?:change|transitioned) from (\S+?) to ([A-Z]+)/;
const STATUS_REASONS = ["ServiceStatusChanged", "E36"]; // the guide's N02 and E36 templates
export const QUERIES = {
  pods: 'count by (project_id, service_id, service_name) (last_over_time(up{service_id!=""}[15m]))',
  healthy: 'count by (service_id) (up{service_id!=""} == 1)',
  qps: 'sum by (service_id) (rate(infer_service_request_total{service_id!=""}[1m]))',
  errors:
    'sum by (service_id) (rate(infer_service_request_total{service_id!="", code=~"5.."}[5m]))' +
    ' / sum by (service_id) (rate(infer_service_request_total{service_id!=""}[5m]))',
};

/** The guide's status names: RUNNING in events, Running on the console. */
export function statusName(upper) {
  return upper.charAt(0) + upper.slice(1).toLowerCase();
}

/** The status the server last announced for a service (its status events), else from its pods. */
function status(events, healthy, pods) {
  for (const event of events) {
    const m = STATUS.exec(event.message);
    if (m) return { name: statusName(m[2]), since: event.lastTimestamp, from: "event" };
  }
  const derived = healthy === pods ? "Running" : healthy > 0 ? "Alarm" : "Abnormal";
  return { name: derived, since: null, from: "pods" };
}

function byService(result) {
  const out = new Map();
  for (const r of result) out.set(r.metric.service_id, Number.parseFloat(r.value[1]));
  return out;
}

async function ttftTp99(serviceId, end) {
  const body = await getJson("/api/v1/sketch_quantiles", {
    metric: "infer_service_first_token_cost",
    service_id: serviceId,
    start: end - SPAN_S,
    end,
    period: "1m",
    q: "0.99",
  });
  const periods = body.data.periods.filter((p) => p.count > 0);
  const last = periods[periods.length - 1];
  return last ? { value: last.quantiles["0.99"], end: last.end * 1000, count: last.count } : null;
}

/** The service's latest status events: the Normal N02 and the Exception E36 (newest first). */
export async function statusEvents(serviceId) {
  const answers = await Promise.all(
    STATUS_REASONS.map((reason) =>
      getJson("/api/v1/events", { kind: "service", service_id: serviceId, reason, limit: 1 }),
    ),
  );
  return answers.flatMap((a) => a.data.events).sort((a, b) => b.lastTimestamp - a.lastTimestamp);
}

async function serviceRow(service, end, healthy, qps, errors) {
  const [announced, latest, ttft] = await Promise.all([
    statusEvents(service.id),
    getJson("/api/v1/events", { service_id: service.id, limit: 1 }),
    ttftTp99(service.id, end),
  ]);
  const state = status(announced, healthy, service.pods);
  const event = latest.data.events[0];
  const cell = (field, value, text, title) =>
    h("td", { class: "num", dataset: { field, value: value ?? "" }, title }, text);
  return h(
    "tr",
    { dataset: { serviceId: service.id } },
    h(
      "th",
      { scope: "row" },
      h("a", { href: `#/service?id=${encodeURIComponent(service.id)}` }, service.name || service.id),
      h("div", { class: "muted small" }, service.id),
    ),
    h(
      "td",
      {
        dataset: { field: "status", value: state.name },
        title: state.from === "event" ? `announced ${fmtDateTime(state.since)}` : "from the pods' health",
      },
      badge(state.name),
    ),
    cell("healthy", healthy, `${healthy} / ${service.pods}`),
    cell("qps", qps, fmtValue(qps, "reqps")),
    cell("errors", errors, errors === undefined ? "—" : fmtValue(errors * 100, "percent")),
    cell(
      "ttft",
      ttft ? ttft.value : undefined,
      ttft ? fmtValue(ttft.value, "ms") : "—",
      ttft ? `sketch TP99 of the 1-min period ending ${fmtDateTime(ttft.end)} (${ttft.count} requests)` : null,
    ),
    h(
      "td",
      { class: "event", dataset: { field: "event" } },
      event
        ? [badge(event.type), " ", h("span", { class: "reason" }, event.reason), " ", event.message,
           h("div", { class: "muted small" }, fmtDateTime(event.lastTimestamp))]
        : h("span", { class: "muted" }, "no events"),
    ),
  );
}

export async function renderServices(page) {
  const body = h("tbody");
  const table = h(
    "table",
    { class: "grid", id: "services", "aria-describedby": "services-help" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Service", "Status", "Healthy pods", "QPS (1 min)", "5xx ratio (5 min)", "TTFT TP99", "Latest event"].map(
          (t) => h("th", { scope: "col" }, t),
        ),
      ),
    ),
    body,
  );
  const status = h("div", { class: "status-line", "aria-live": "polite" });
  page.main.append(
    h("h1", {}, "Services"),
    h(
      "p",
      { id: "services-help", class: "muted" },
      "Every service with pods seen in the last 15 minutes. Status is the guide's (the server's last status " +
        "event); TTFT TP99 comes from the mergeable sketches of the latest minute with requests. " +
        "Refreshed every minute.",
    ),
    status,
    table,
  );

  async function load() {
    const end = Math.floor(Date.now() / 1000);
    table.dataset.state = "loading";
    try {
      const [pods, healthy, qps, errors] = await Promise.all([
        prom.instant(QUERIES.pods, end),
        prom.instant(QUERIES.healthy, end),
        prom.instant(QUERIES.qps, end),
        prom.instant(QUERIES.errors, end),
      ]);
      const healthyBy = byService(healthy);
      const qpsBy = byService(qps);
      const errorsBy = byService(errors);
      const services = pods
        .map((r) => ({
          id: r.metric.service_id,
          name: r.metric.service_name || "",
          project: r.metric.project_id || "",
          pods: Number.parseFloat(r.value[1]),
        }))
        .sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
      const rows = await Promise.all(
        services.map((s) =>
          serviceRow(s, end, healthyBy.get(s.id) ?? 0, qpsBy.get(s.id) ?? 0, errorsBy.get(s.id)),
        ),
      );
      if (page.left) return;
      clear(body);
      if (rows.length === 0) {
        body.append(h("tr", {}, h("td", { colspan: 7 }, message("No service has reported in the last 15 minutes."))));
      }
      body.append(...rows);
      clear(status).append(`Updated ${fmtDateTime(end * 1000)}`);
      table.dataset.time = String(end);
      table.dataset.state = "ready";
    } catch (err) {
      if (page.left) return;
      clear(status).append(message(`Cannot load the services: ${err.message}`, "error"));
      table.dataset.state = "error";
    }
  }

  await load();
  page.every(60_000, load);
}

