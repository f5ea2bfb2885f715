// Building elements and formatting values: the small things every page uses.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function pad(n) {
  return String(n).padStart(2, "0");
}

/** Local date and time of epoch milliseconds, e.g. 2026-12-07 09:41:05. */
export function fmtDateTime(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(ms)}`;
}

/** Month, day and time where the year is this one (table columns), else the full date. */
export function fmtShort(ms) {
  if (!Number.isFinite(ms) || ms <= 0) return "—";
  const d = new Date(ms);
  if (d.getFullYear() !== new Date().getFullYear()) return fmtDateTime(ms);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(ms)}`;
}

export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The value for <input type="datetime-local">. */
export function toLocalInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function trim(x, digits = 3) {
  if (x === 0) return "0";
  const abs = Math.abs(x);
  if (abs >= 1000) return Math.round(x).toLocaleString("en");
  return String(Number(x.toPrecision(digits)));
}

function scaled(x, base, units, digits = 3) {
  let i = 0;
  while (Math.abs(x) >= base && i < units.length - 1) {
    x /= base;
    i += 1;
  }
  return `${trim(x, digits)} ${units[i]}`;
}

/** A value in one of the dashboards' Grafana units, as a reader wants it. */
export function fmtValue(v, unit) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  switch (unit) {
    case "ms":
      return Math.abs(v) >= 1000 ? `${trim(v / 1000)} s` : `${trim(v)} ms`;
    case "s":
      return Math.abs(v) < 1 && v !== 0 ? `${trim(v * 1000)} ms` : `${trim(v)} s`;
    case "percent":
      return `${trim(v)} %`;
    case "percentunit":
      return `${trim(v * 100)} %`;
    case "reqps":
      return `${trim(v)} req/s`;
    case "decmbytes":
      return scaled(v, 1000, ["MB", "GB", "TB"]);
    case "bytes":
      return scaled(v, 1024, ["B", "KiB", "MiB", "GiB"]);
    case "Bps":
      return scaled(v, 1000, ["B/s", "kB/s", "MB/s", "GB/s"]);
    default:
      return Math.abs(v) >= 1e6 ? scaled(v, 1000, ["", "k", "M", "G", "T"]).trim() : trim(v);
  }
}

/** ``value`` as a regular expression matching only itself (RE2 syntax), for ``label=~"…"``. */
export function regexLiteral(value) {
  return value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** ``value`` inside a PromQL double-quoted string. */
export function promString(value) {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

export function durationSeconds(text) {
  const m = /^(\d+)([smhdw])$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]];
}

export function durationLabel(text) {
  const m = /^(\d+)([smhdw])$/.exec(text);
  if (!m) return text;
  const unit = { s: "s", m: "min", h: "h", d: "days", w: "weeks" }[m[2]];
  return m[2] === "d" && m[1] === "1" ? "1 day" : `${m[1]} ${unit}`;
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** A badge for a status or event type; its class picks the colour. */
export function badge(text, kind = "") {
  const cls = String(kind || text).toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return h("span", { class: `badge badge-${cls}` }, text);
}

export function message(text, kind = "info") {
  return h("p", { class: `note note-${kind}`, role: kind === "error" ? "alert" : null }, text);
}
