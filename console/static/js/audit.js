// The audit trail (CTS's trace search): filters, pages, a record's request and response, and
// whether the hash chain is intact.

import { getJson } from "./api.js";
import { badge, clear, fmtDateTime, h, message, toLocalInput } from "./dom.js";

const RATINGS = ["normal", "warning", "incident"];
const TEXT_FILTERS = [
  ["trace_name", "Trace name", "e.g. CreateServiceV2"],
  ["resource_type", "Resource type", "e.g. serviceV2"],
  ["resource_name", "Resource name", ""],
  ["user", "User", ""],
];
const DEFAULT_SPAN_MS = 7 * 86_400_000; // CTS keeps traces seven days

function pretty(text) {
  if (!text) return "(none)";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function detail(t) {
  const rows = [
    ["Trace ID", t.trace_id],
    ["Trace type", t.trace_type],
    ["Service type", t.service_type],
    ["Resource ID", t.resource_id],
    ["Project", t.project_id],
    ["User", `${t.user.name}${t.user.id ? ` (${t.user.id})` : ""}${t.user.domain?.name ? ` · ${t.user.domain.name}` : ""}`],
    ["Source IP", t.source_ip],
    ["Request ID", t.request_id],
    ["API version", t.api_version],
    ["Message", t.message],
    ["Recorded", fmtDateTime(t.record_time)],
  ];
  return h(
    "div",
    { class: "detail" },
    h("dl", {}, rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("div", { class: "bodies" },
      h("section", {}, h("h3", {}, "Request"), h("pre", { class: "request" }, pretty(t.request))),
      h("section", {}, h("h3", {}, "Response"), h("pre", { class: "response" }, pretty(t.response))),
    ),
  );
}

export async function renderAudit(page) {
  const p = page.params;
  const now = Date.now();
  const from = h("input", { id: "audit-from", type: "datetime-local", value: toLocalInput(Number(p.get("from")) || now - DEFAULT_SPAN_MS) });
  const to = h("input", { id: "audit-to", type: "datetime-local", value: p.get("to") ? toLocalInput(Number(p.get("to"))) : "" });
  const texts = TEXT_FILTERS.map(([name, label, hint]) => [
    name,
    label,
    h("input", { id: `audit-${name}`, name, type: "search", value: p.get(name) || "", placeholder: hint }),
  ]);
  const rating = h(
    "select",
    { id: "audit-rating" },
    h("option", { value: "" }, "All"),
    RATINGS.map((r) => h("option", { value: r, selected: p.get("trace_rating") === r }, r)),
  );
  const size = h("select", { id: "audit-size" }, [10, 20, 50].map((n) => h("option", { value: n, selected: n === 20 }, String(n))));
  const verdict = h("div", { id: "verdict", class: "verdict", "aria-live": "polite", dataset: { state: "loading" } }, "Checking the chain…");
  const status = h("div", { class: "status-line", "aria-live": "polite" });
  const body = h("tbody");
  const prev = h("button", { type: "button", id: "audit-prev", disabled: true }, "‹ Previous");
  const next = h("button", { type: "button", id: "audit-next", disabled: true }, "Next ›");
  const pageNo = h("span", { id: "audit-page", class: "muted" }, "");
  const table = h(
    "table",
    { class: "grid", id: "traces" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Time", "Trace name", "Resource type", "Resource name", "User", "Source IP", "Code", "Rating", ""].map((t) =>
          h("th", { scope: "col" }, t),
        ),
      ),
    ),
    body,
  );
  const field = (label, control) => h("label", { class: "field", for: control.id }, h("span", {}, label), control);
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Trace filters" },
    field("From", from),
    field("To", to),
    texts.map(([, label, input]) => field(label, input)),
    field("Rating", rating),
    field("Per page", size),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "audit-search" }, "Search"), h("button", { type: "reset", class: "secondary" }, "Reset")),
  );
  page.main.append(
    h("h1", {}, "Audit"),
    h("p", { class: "muted" }, "Operations on services, deployments, keys and settings, as CTS traces, newest first. Each record is hash-chained to the one before it, and signed digests of the chain are kept outside the database, so an altered or removed record is detected."),
    verdict,
    form,
    status,
    table,
    h("div", { class: "pager" }, prev, pageNo, next),
  );

  async function verify() {
    verdict.dataset.state = "loading";
    try {
      const v = (await getJson("/api/v1/audit/verify")).data;
      if (page.left) return;
      const coverage = v.digests_enabled
        ? `signed digests cover records up to #${v.covered_to_seq}; ${v.not_covered} newer not yet covered`
        : "no signed digests are kept";
      clear(verdict).append(
        v.intact ? badge("Intact", "running") : badge("Tampered", "abnormal"),
        ` Chain verified: ${v.checked} records checked, ${coverage}.`,
        v.problems && v.problems.length ? h("ul", {}, v.problems.map((x) => h("li", {}, typeof x === "string" ? x : JSON.stringify(x)))) : "",
        " ",
        h("button", { type: "button", class: "link", onclick: verify }, "Verify again"),
      );
      verdict.dataset.state = v.intact ? "intact" : "tampered";
    } catch (err) {
      if (page.left) return;
      clear(verdict).append(message(err.status === 403 ? `The chain spans every project: ${err.message}` : `Cannot verify the chain: ${err.message}`, err.status === 403 ? "info" : "error"));
      verdict.dataset.state = "unavailable";
    }
  }

  let markers = [null]; // the marker that opens each page seen so far
  let index = 0;

  function params() {
    const out = { limit: size.value };
    if (from.value) out.from = new Date(from.value).getTime();
    if (to.value) out.to = new Date(to.value).getTime();
    for (const [name, , input] of texts) if (input.value.trim()) out[name] = input.value.trim();
    if (rating.value) out.trace_rating = rating.value;
    return out;
  }

  function row(t) {
    const button = h("button", { type: "button", class: "link", "aria-expanded": "false" }, "Details");
    const tr = h(
      "tr",
      { dataset: { traceId: t.trace_id } },
      h("td", { class: "nowrap" }, fmtDateTime(t.time)),
      h("td", {}, t.trace_name),
      h("td", {}, t.resource_type),
      h("td", {}, t.resource_name),
      h("td", {}, t.user.name),
      h("td", {}, t.source_ip),
      h("td", { class: "num" }, t.code),
      h("td", {}, badge(t.trace_rating, t.trace_rating === "normal" ? "running" : t.trace_rating === "warning" ? "alarm" : "abnormal")),
      h("td", {}, button),
    );
    let open = null;
    button.addEventListener("click", () => {
      if (open) {
        open.remove();
        open = null;
        button.setAttribute("aria-expanded", "false");
        return;
      }
      open = h("tr", { class: "detail-row" }, h("td", { colspan: 9 }, detail(t)));
      tr.after(open);
      button.setAttribute("aria-expanded", "true");
    });
    return tr;
  }

  let latest = 0; // the newest search asked for: an older one answering later is dropped

  async function search() {
    const mine = ++latest;
    table.dataset.state = "loading";
    table.dataset.searches = String(Number(table.dataset.searches || 0) + 1);
    try {
      const query = params();
      if (markers[index]) query.next = markers[index];
      const answer = await getJson("/api/v1/audit/traces", query);
      if (page.left || mine !== latest) return;
      clear(body);
      answer.traces.forEach((t) => body.append(row(t)));
      if (answer.traces.length === 0) body.append(h("tr", {}, h("td", { colspan: 9 }, message("No trace matches these filters."))));
      const marker = answer.meta_data.marker;
      markers = markers.slice(0, index + 1);
      if (marker) markers.push(marker);
      prev.disabled = index === 0;
      next.disabled = !marker;
      pageNo.textContent = `Page ${index + 1}`;
      clear(status).append(`${answer.meta_data.count} traces on this page · updated ${fmtDateTime(Date.now())}`);
      table.dataset.state = "ready";
      table.dataset.page = String(index + 1);
    } catch (err) {
      if (page.left || mine !== latest) return;
      clear(status).append(message(`Cannot search the traces: ${err.message}`, "error"));
      table.dataset.state = "error";
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    markers = [null];
    index = 0;
    const state = params();
    delete state.limit;
    page.setParams(state);
    search();
  });
  form.addEventListener("reset", () => {
    setTimeout(() => {
      from.value = toLocalInput(Date.now() - DEFAULT_SPAN_MS);
      form.requestSubmit();
    });
  });
  size.addEventListener("change", () => form.requestSubmit());
  next.addEventListener("click", () => {
    index += 1;
    search();
  });
  prev.addEventListener("click", () => {
    index = Math.max(0, index - 1);
    search();
  });
  await Promise.all([verify(), search()]);
}
