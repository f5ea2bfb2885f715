// Service and pod events (the guide's Events tab): type, reason, message, occurrences, first and
// last time; filters; new events arrive from the event stream while the page is open.

import { followEvents, getJson, prom } from "./api.js";
import { badge, clear, debounce, fmtDateTime, fmtShort, h, message } from "./dom.js";

const TYPES = ["Normal", "Warning", "Exception", "Alarm"];
const SINCE = [
  ["", "Everything kept"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
];
const SINCE_MS = { "1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000 };
const PAGE = 50;

function field(label, control) {
  return h("label", { class: "field", for: control.id }, h("span", {}, label), control);
}

function options(values, selected, all = "All") {
  return [h("option", { value: "" }, all), ...values.map(([v, t]) => h("option", { value: v, selected: v === selected }, t))];
}

function objectName(e) {
  return e.kind === "pod" ? e.object.pod : e.object.service_name || e.object.service_id;
}

function eventKey(e) {
  return JSON.stringify([e.kind, e.type, e.reason, e.message, e.object]);
}

export async function renderEvents(page) {
  const p = page.params;
  const filters = {
    kind: p.get("kind") || "",
    type: p.get("type") || "",
    service_id: p.get("service_id") || "",
    pod: p.get("pod") || "",
    q: p.get("q") || "",
    since: p.get("since") || "",
  };
  let services = [];
  try {
    const end = Math.floor(Date.now() / 1000);
    services = await prom.series('up{service_id!=""}', end - 86400, end);
  } catch {
    services = [];
  }
  const serviceNames = new Map(services.map((s) => [s.service_id, s.service_name || s.service_id]));
  const kind = h("select", { id: "filter-kind" }, options([["service", "Service events"], ["pod", "Pod events"]], filters.kind));
  const type = h("select", { id: "filter-type" }, options(TYPES.map((t) => [t, t]), filters.type));
  const service = h(
    "select",
    { id: "filter-service" },
    options([...serviceNames].sort((a, b) => a[1].localeCompare(b[1])), filters.service_id),
  );
  const pod = h("select", { id: "filter-pod" });
  const text = h("input", { id: "filter-q", type: "search", value: filters.q, placeholder: "reason or message" });
  const since = h("select", { id: "filter-since" }, SINCE.map(([v, t]) => h("option", { value: v, selected: v === filters.since }, t)));
  const live = h("span", { class: "live", id: "live", dataset: { state: "connecting" } }, "connecting…");
  const status = h("div", { class: "status-line", "aria-live": "polite" });
  const body = h("tbody");
  const more = h("button", { type: "button", id: "more", hidden: true }, "Load more");
  const table = h(
    "table",
    { class: "grid", id: "events" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Last seen", "Type", "Kind", "Reason", "Object", "Event information", "Occurrences", "First seen"].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    body,
  );

  function fillPods() {
    const pods = [...new Set(services.filter((s) => !service.value || s.service_id === service.value).map((s) => s.source))]
      .filter(Boolean)
      .sort();
    if (filters.pod && !pods.includes(filters.pod)) pods.unshift(filters.pod);
    clear(pod).append(...options(pods.map((x) => [x, x]), filters.pod));
  }
  fillPods();

  page.main.append(
    h("h1", {}, "Events"),
    h(
      "p",
      { class: "muted" },
      "Service events (status and operations) and pod events (container lifecycle and health), identical ones " +
        "folded into one row with their occurrences. Pod events are kept one hour (seven days when configured), " +
        "service events a month.",
    ),
    h(
      "form",
      { class: "filters", role: "search", "aria-label": "Event filters", onsubmit: (e) => e.preventDefault() },
      field("Kind", kind),
      field("Type", type),
      field("Service", service),
      field("Pod", pod),
      field("Search", text),
      field("Time", since),
      h("span", { class: "field" }, h("span", {}, "Updates"), live),
    ),
    status,
    table,
    more,
  );

  let cursor = null;
  let known = new Map();
  let loads = 0; // since the filters last changed: the first load marks no row as fresh
  let latest = 0; // the newest load asked for: an older one answering later is dropped

  function query() {
    const params = {
      kind: filters.kind,
      type: filters.type,
      service_id: filters.service_id,
      pod: filters.pod,
      q: filters.q,
      limit: PAGE,
    };
    if (filters.since) params.from = Date.now() - SINCE_MS[filters.since];
    return params;
  }

  function row(e, fresh) {
    return h(
      "tr",
      { class: fresh ? "fresh" : null, dataset: { kind: e.kind, type: e.type } },
      h("td", { class: "nowrap", title: fmtDateTime(e.lastTimestamp) }, fmtShort(e.lastTimestamp)),
      h("td", {}, badge(e.type)),
      h("td", {}, e.kind === "pod" ? "Pod" : "Service"),
      h("td", { class: "reason wrap" }, e.reason),
      h("td", { class: "object" }, objectName(e)),
      h("td", { class: "message" }, e.message),
      h("td", { class: "num", dataset: { field: "count" } }, String(e.count)),
      h("td", { class: "nowrap", title: fmtDateTime(e.firstTimestamp) }, fmtShort(e.firstTimestamp)),
    );
  }

  async function load(append = false) {
    const mine = ++latest;
    loads += 1;
    table.dataset.state = "loading";
    try {
      const params = query();
      if (append && cursor) params.next = cursor;
      const answer = await getJson("/api/v1/events", params);
      if (page.left || mine !== latest) return;
      const events = answer.data.events;
      if (!append) clear(body);
      const seen = new Map();
      for (const e of events) {
        const key = eventKey(e);
        const before = known.get(key);
        seen.set(key, e.count);
        body.append(row(e, loads > 1 && !append && (before === undefined || before < e.count)));
      }
      known = append ? new Map([...known, ...seen]) : seen;
      if (!append && events.length === 0) {
        body.append(h("tr", {}, h("td", { colspan: 8 }, message("No event matches these filters."))));
      }
      cursor = answer.data.next;
      more.hidden = !cursor;
      clear(status).append(`${body.querySelectorAll("tr[data-kind]").length} shown · updated ${fmtDateTime(Date.now())}`);
      table.dataset.state = "ready";
    } catch (err) {
      if (page.left || mine !== latest) return;
      clear(status).append(message(`Cannot load the events: ${err.message}`, "error"));
      table.dataset.state = "error";
    }
  }

  function apply() {
    Object.assign(filters, {
      kind: kind.value,
      type: type.value,
      service_id: service.value,
      pod: pod.value,
      q: text.value.trim(),
      since: since.value,
    });
    page.setParams(filters);
    known = new Map();
    loads = 0;
    load();
  }
  kind.addEventListener("change", apply);
  type.addEventListener("change", apply);
  service.addEventListener("change", () => {
    filters.pod = "";
    fillPods();
    apply();
  });
  pod.addEventListener("change", apply);
  since.addEventListener("change", apply);
  text.addEventListener("input", debounce(apply, 400));
  more.addEventListener("click", () => load(true));

  function matches(e) {
    const o = e.object || {};
    return (
      (!filters.kind || e.kind === filters.kind) &&
      (!filters.type || e.type === filters.type) &&
      (!filters.service_id || o.service_id === filters.service_id) &&
      (!filters.pod || o.pod === filters.pod)
    );
  }
  const reload = debounce(() => load(), 300);
  const stop = followEvents(
    (e) => {
      if (matches(e)) reload();
    },
    (state) => {
      live.dataset.state = state;
      live.textContent = { live: "● live", reconnecting: "reconnecting…", stopped: "off (no permission)" }[state] || state;
    },
  );
  page.onLeave(stop);
  await load();
}
