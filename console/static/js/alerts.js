// Firing and pending alerts, each with a link to its rule; the rules with their state.

import { getJson } from "./api.js";
import { badge, clear, fmtDateTime, fmtValue, h, message } from "./dom.js";

const HIDDEN_LABELS = new Set(["alertname", "severity", "project_id"]);

function ruleHref(group, rule) {
  const q = new URLSearchParams({ group: group.name, name: rule.name });
  if (group.project_id) q.set("project", group.project_id);
  return `#/rule?${q}`;
}

function labelList(labels) {
  return h(
    "ul",
    { class: "labels" },
    Object.entries(labels)
      .filter(([k]) => !HIDDEN_LABELS.has(k))
      .map(([k, v]) => h("li", {}, h("span", { class: "muted" }, `${k}=`), v)),
  );
}

async function loadRules() {
  return (await getJson("/api/v1/rules")).data.groups;
}

function alertRows(groups, state) {
  const rows = [];
  for (const group of groups) {
    for (const rule of group.rules) {
      for (const alert of rule.alerts || []) {
        if (alert.state === state) rows.push({ group, rule, alert });
      }
    }
  }
  return rows.sort((a, b) => Date.parse(a.alert.activeAt) - Date.parse(b.alert.activeAt));
}

function alertTable(id, rows) {
  const body = h("tbody");
  for (const { group, rule, alert } of rows) {
    const service = alert.labels.service_id;
    body.append(
      h(
        "tr",
        { dataset: { alertname: alert.labels.alertname, state: alert.state } },
        h("td", {}, h("strong", {}, alert.labels.alertname)),
        h("td", {}, badge(alert.labels.severity || "none", alert.labels.severity === "critical" ? "abnormal" : "alarm")),
        h("td", {}, alert.annotations.summary || ""),
        h("td", {}, labelList(alert.labels)),
        h("td", { class: "nowrap" }, fmtDateTime(Date.parse(alert.activeAt))),
        h("td", { class: "num", title: alert.value }, fmtValue(Number.parseFloat(alert.value))),
        h(
          "td",
          {},
          h("a", { href: ruleHref(group, rule), class: "rule-link" }, "Rule"),
          service ? [h("br"), h("a", { href: `#/service?id=${encodeURIComponent(service)}` }, "Monitoring")] : "",
        ),
      ),
    );
  }
  if (rows.length === 0) body.append(h("tr", {}, h("td", { colspan: 7 }, h("span", { class: "muted" }, "None"))));
  return h(
    "table",
    { class: "grid", id },
    h("thead", {}, h("tr", {}, ["Alert", "Severity", "Summary", "Labels", "Active since", "Value", ""].map((t) => h("th", { scope: "col" }, t)))),
    body,
  );
}

export async function renderAlerts(page) {
  const holder = h("div", { id: "alerts", dataset: { state: "loading" } });
  const status = h("div", { class: "status-line", "aria-live": "polite" });
  page.main.append(
    h("h1", {}, "Alerts"),
    h("p", { class: "muted" }, "Alerts of the rules the server evaluates (the same rules Prometheus would load), refreshed every minute. Pending: the condition holds but not yet for the rule's duration."),
    status,
    holder,
  );
  async function load() {
    try {
      const groups = await loadRules();
      if (page.left) return;
      const firing = alertRows(groups, "firing");
      const pending = alertRows(groups, "pending");
      clear(holder).append(
        h("h2", {}, `Firing (${firing.length})`),
        alertTable("firing", firing),
        h("h2", {}, `Pending (${pending.length})`),
        alertTable("pending", pending),
        h("h2", {}, "Rules"),
        h(
          "div",
          { class: "rules" },
          groups.map((group) =>
            h(
              "section",
              { class: "rule-group" },
              h("h3", {}, group.name, h("span", { class: "muted small" }, ` · every ${group.interval} s${group.project_id ? ` · project ${group.project_id}` : ""}`)),
              h(
                "ul",
                {},
                group.rules.map((rule) =>
                  h("li", {}, badge(rule.state, rule.state === "firing" ? "abnormal" : rule.state === "pending" ? "alarm" : "inactive"), " ", h("a", { href: ruleHref(group, rule) }, rule.name)),
                ),
              ),
            ),
          ),
        ),
      );
      clear(status).append(`Updated ${fmtDateTime(Date.now())}`);
      holder.dataset.state = "ready";
    } catch (err) {
      if (page.left) return;
      clear(status).append(message(`Cannot load the alerts: ${err.message}`, "error"));
      holder.dataset.state = "error";
    }
  }
  await load();
  page.every(60_000, load);
}

export async function renderRule(page) {
  const p = page.params;
  const name = p.get("name") || "";
  const groupName = p.get("group") || "";
  const project = p.get("project") || "";
  page.main.append(h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/alerts" }, "Alerts"), ` › ${groupName} › ${name}`));
  let groups;
  try {
    groups = await loadRules();
  } catch (err) {
    page.main.append(message(`Cannot load the rules: ${err.message}`, "error"));
    return;
  }
  const group = groups.find((g) => g.name === groupName && (g.project_id || "") === project);
  const rule = group?.rules.find((r) => r.name === name);
  if (!rule) {
    page.main.append(h("h1", {}, name), message("No such rule (or no longer visible to this key).", "error"));
    return;
  }
  const pairs = (obj) => h("dl", {}, Object.entries(obj).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  page.main.append(
    h("h1", { id: "rule-name" }, rule.name, " ", badge(rule.state, rule.state === "firing" ? "abnormal" : rule.state === "pending" ? "alarm" : "inactive")),
    h("h2", {}, "Expression"),
    h("pre", { class: "expr", id: "rule-expr" }, rule.query),
    h("p", {}, `Fires after the expression holds for ${rule.duration} s; group ${group.name}, evaluated every ${group.interval} s (${group.file}).`),
    h("h2", {}, "Labels"),
    pairs(rule.labels),
    h("h2", {}, "Annotations"),
    pairs(rule.annotations),
    h("h2", {}, `Active alerts (${rule.alerts.length})`),
    alertTable("rule-alerts", rule.alerts.map((alert) => ({ group, rule, alert }))),
  );
}
