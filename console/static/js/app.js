// The console's router: one page per hash route, the login when the server asks for a key.

import { apiKey, getJson, onUnauthorized, setApiKey, settings } from "./api.js";
import { renderAlerts, renderRule } from "./alerts.js";
import { renderAudit } from "./audit.js";
import { clear, h, message } from "./dom.js";
import { renderEvents } from "./events.js";
import { renderMonitor } from "./monitor.js";
import { renderServices } from "./services.js";

const ROUTES = {
  services: renderServices,
  service: renderMonitor,
  events: renderEvents,
  audit: renderAudit,
  alerts: renderAlerts,
  rule: renderRule,
  login: renderLogin,
};

let current = null;

function parseHash() {
  const text = window.location.hash.replace(/^#\/?/, "");
  const at = text.indexOf("?");
  const name = (at >= 0 ? text.slice(0, at) : text) || "services";
  return { name, params: new URLSearchParams(at >= 0 ? text.slice(at + 1) : "") };
}

/** The page's context: where it draws, its parameters, and what to stop when it is left. */
class Page {
  constructor(name, params) {
    this.name = name;
    this.params = params;
    this.main = document.getElementById("main");
    this.cleanups = [];
    this.left = false;
  }

  onLeave(fn) {
    this.cleanups.push(fn);
  }

  every(ms, fn) {
    const timer = setInterval(fn, ms);
    this.onLeave(() => clearInterval(timer));
  }

  /** Keeps the page's state in the address without reloading it, so the view can be shared. */
  setParams(params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") query.set(k, v);
    const text = query.toString();
    this.params = query;
    window.history.replaceState(null, "", `#/${this.name}${text ? `?${text}` : ""}`);
  }

  leave() {
    this.left = true;
    this.cleanups.forEach((fn) => fn());
  }
}

function renderSession() {
  const el = clear(document.getElementById("session"));
  if (!settings.auth) return;
  const key = apiKey();
  if (!key) return;
  el.append(
    h("span", { class: "muted" }, `API key …${key.slice(-4)}`),
    h("button", { type: "button", class: "link", onclick: logOut }, "Log out"),
  );
}

function logOut() {
  setApiKey("");
  renderSession();
  window.location.hash = "#/login";
}

async function route() {
  if (current) current.leave();
  let { name, params } = parseHash();
  if (settings.auth && !apiKey() && name !== "login") {
    window.location.replace("#/login");
    return;
  }
  if (!ROUTES[name]) name = "missing";
  for (const link of document.querySelectorAll("nav a[data-nav]")) {
    const active = link.dataset.nav.split(" ").includes(name);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  renderSession();
  const page = new Page(name, params);
  current = page;
  clear(page.main);
  if (name === "missing") {
    page.main.append(h("h1", {}, "Not found"), message("No such page.", "error"));
    return;
  }
  await ROUTES[name](page);
  document.body.dataset.page = name;
}

function renderLogin(page) {
  const input = h("input", {
    id: "api-key",
    type: "password",
    autocomplete: "off",
    required: true,
    "aria-describedby": "login-help",
  });
  const status = h("div", { id: "login-status", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "login", onsubmit: (e) => submit(e) },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("button", { type: "submit" }, "Log in"),
  );
  async function submit(event) {
    event.preventDefault();
    clear(status);
    setApiKey(input.value.trim());
    try {
      await getJson("/api/v1/status/buildinfo");
    } catch (err) {
      setApiKey("");
      status.append(message(`This key was refused: ${err.message}`, "error"));
      return;
    }
    window.location.hash = "#/services";
  }
  page.main.append(
    h("h1", {}, "Log in"),
    h(
      "p",
      { id: "login-help" },
      "This server has authentication on: every request carries an API key, and a key of one " +
        "project sees only that project's services, events and traces. The key stays in this tab only.",
    ),
    form,
    status,
  );
  input.focus();
}

onUnauthorized(() => {
  if (!settings.auth) return;
  setApiKey("");
  if (parseHash().name !== "login") window.location.hash = "#/login";
});

window.addEventListener("hashchange", route);
route();
