// The HTTP APIs the pages read, with the caller's API key when the server asks for one.

export const settings = JSON.parse(document.getElementById("settings").textContent);

const KEY = "infersight.apiKey";
const MAX_IN_FLIGHT = 6; // range queries at once, as Grafana sends them
let inFlight = 0;
const waiting = [];
const unauthorizedListeners = [];

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function onUnauthorized(fn) {
  unauthorizedListeners.push(fn);
}

function headers() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function url(path, params) {
  const u = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) u.searchParams.append(name, String(v));
  }
  return u;
}

/** GET ``path`` as JSON; an ApiError (with Prometheus' errorType where the API gives one) otherwise. */
export async function getJson(path, params = {}) {
  let response;
  try {
    response = await fetch(url(path, params), { headers: headers() });
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the server (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok || (body && body.status === "error")) {
    const text = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const err = new ApiError(response.status, (body && body.errorType) || "http", text);
    if (response.status === 401) unauthorizedListeners.forEach((fn) => fn(err));
    throw err;
  }
  return body;
}

async function queued(fn) {
  if (inFlight >= MAX_IN_FLIGHT) await new Promise((resolve) => waiting.push(resolve));
  inFlight += 1;
  try {
    return await fn();
  } finally {
    inFlight -= 1;
    const next = waiting.shift();
    if (next) next();
  }
}

export const prom = {
  instant: (query, time) => getJson("/api/v1/query", { query, time }).then((b) => b.data.result),
  range: (query, start, end, step) =>
    queued(() => getJson("/api/v1/query_range", { query, start, end, step })).then((b) => b.data.result),
  series: (match, start, end) =>
    getJson("/api/v1/series", { "match[]": match, start, end }).then((b) => b.data),
};

/**
 * Follows ``/api/v1/events/stream`` (server-sent events, read through fetch so the key can go in a
 * header); ``onEvent`` gets each event, ``onState`` "live" / "reconnecting" / "stopped". Returns
 * the function that stops it.
 */
export function followEvents(onEvent, onState) {
  const controller = new AbortController();
  let stopped = false;
  (async () => {
    let delayMs = 1000;
    while (!stopped) {
      try {
        const response = await fetch("/api/v1/events/stream", {
          headers: headers(),
          signal: controller.signal,
        });
        if (response.status === 401 || response.status === 403) {
          onState("stopped");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`${response.status}`);
        onState("live");
        delayMs = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = frame
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).trimStart())
              .join("\n");
            if (data) onEvent(JSON.parse(data));
          }
        }
      } catch {
        if (stopped) return;
      }
      onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(delayMs * 2, 30000);
    }
  })();
  return () => {
    stopped = true;
    controller.abort();
  };
}
