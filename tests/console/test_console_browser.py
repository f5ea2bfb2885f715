"""The console in a real browser (Debian's chromium) against the demo's data, served by
``infersight server`` with auth on.

Every page loads with no console error and no failed request; what the pages show is what the
HTTP APIs answer, read here independently: the services table's figures, every chart's points
(its queries filled in by this test, not by the page), the event list under each filter, the
audit search pages. ``CONSOLE_SCREENSHOTS=docs/console`` writes a screenshot of each page there.
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page

from console.views import console_settings
from tests.console.browser import PageLog
from tests.console.conftest import ConsoleServer, open_page

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
READ_CHARTS = """async () => {
  const { charts } = await import('/console/js/chart.js');
  return [...charts.entries()].map(([title, c]) => ({
    title,
    drawn: Boolean(c.plot),
    xs: c.plot ? Array.from(c.plot.data[0]) : null,
    series: c.plot
      ? c.plot.series.slice(1).map((s, i) => ({ label: s.label, ys: Array.from(c.plot.data[i + 1]) }))
      : c.series.map((s) => ({ label: s.label, ys: s.ys })),
  }));
}"""
# For each drawn chart: whether the canvas has ink at the first point of its first series.
INK_AT_FIRST_POINT = """async () => {
  const { charts } = await import('/console/js/chart.js');
  const out = {};
  for (const [title, c] of charts) {
    if (!c.plot) continue;
    const u = c.plot;
    let inked = false;
    for (let s = 1; s < u.series.length && !inked; s++) {
      const i = u.data[s].findIndex((y) => y !== null);
      if (i < 0) continue;
      const x = Math.round(u.valToPos(u.data[0][i], 'x', true));
      const y = Math.round(u.valToPos(u.data[s][i], u.series[s].scale, true));
      const px = u.ctx.getImageData(x - 3, y - 3, 7, 7).data;
      for (let k = 0; k < px.length; k += 4) {
        const rgb = [px[k], px[k + 1], px[k + 2]];
        // the series' colour, not the grey of an axis or a grid line
        if (px[k + 3] > 128 && Math.max(...rgb) - Math.min(...rgb) > 60) inked = true;
      }
    }
    out[title] = inked;
  }
  return out;
}"""


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def goto(page: Page, server: ConsoleServer, route: str, ready: str) -> None:
    """Open ``route`` and wait until ``ready`` (a selector the page sets once it has its data)."""
    page.goto(f"{server.url}/#/{route}")
    page.wait_for_selector(ready, state="attached")


def api(server: ConsoleServer, path: str, **params: Any) -> Any:
    with server.client() as client:
        response = client.get(f"/api/v1/{path}", params=params)
    assert response.status_code == 200, (path, params, response.text[:500])
    return response.json()


def services(server: ConsoleServer) -> list[dict[str, str]]:
    """The demo's pods as the API lists them (service, deployment, instance, pod, project)."""
    now = time.time()
    found: list[dict[str, str]] = api(
        server, "series", **{"match[]": 'up{service_id!=""}'}, start=now - 3600
    )["data"]
    assert found, "the demo left no pods"
    return sorted(found, key=lambda s: (s["service_name"], s["source"]))


def number(value: str) -> float | None:
    y = float(value)
    return y if math.isfinite(y) else None


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# The page's figures, computed here from their definitions (not read from the page's scripts).
HEALTHY = 'count by (service_id) (up{service_id!=""} == 1)'
QPS = 'sum by (service_id) (rate(infer_service_request_total{service_id!=""}[1m]))'
ERRORS = (
    'sum by (service_id) (rate(infer_service_request_total{service_id!="", code=~"5.."}[5m]))'
    ' / sum by (service_id) (rate(infer_service_request_total{service_id!=""}[5m]))'
)
STATUS = re.compile(r"status (?:change|transitioned) from \S+? to ([A-Z]+)")


def by_service(server: ConsoleServer, expr: str, at: int) -> dict[str, float]:
    result = api(server, "query", query=expr, time=at)["data"]["result"]
    return {r["metric"]["service_id"]: float(r["value"][1]) for r in result}


def test_every_page_loads_with_no_error_and_no_failed_request(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    pods = services(console_server)
    service_id, pod = pods[0]["service_id"], pods[0]["source"]
    goto(page, console_server, "services", "#services[data-state=ready]")
    shot(page, "services")
    goto(page, console_server, f"service?id={service_id}", "#panels[data-state=ready]")
    shot(page, "service-monitoring")
    goto(
        page,
        console_server,
        f"service?id={service_id}&pod={pod}",
        "#panels[data-state=ready][data-level=pod]",
    )
    shot(page, "pod-monitoring")
    goto(page, console_server, "events", "#events[data-state=ready]")
    page.wait_for_selector("#live[data-state=live]")
    shot(page, "events")
    goto(page, console_server, "audit", "#traces[data-state=ready]")
    page.wait_for_selector("#verdict[data-state=intact]")
    page.locator("#traces tbody tr[data-trace-id]", has_text="CreateServiceV2").first.get_by_role(
        "button", name="Details"
    ).click()
    page.locator("#traces .detail").scroll_into_view_if_needed()
    shot(page, "audit")
    goto(page, console_server, "alerts", "#alerts[data-state=ready]")
    shot(page, "alerts")
    page.locator("a.rule-link, .rule-group a").first.click()
    page.wait_for_selector("#rule-expr")
    goto(page, console_server, "no-such-page", "main h1")
    assert page.inner_text("main h1") == "Not found"
    log.assert_clean()


def test_services_table_shows_what_the_apis_answer(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    goto(page, console_server, "services", "#services[data-state=ready]")
    at = int(page.get_attribute("#services", "data-time") or "0")
    rows = page.eval_on_selector_all(
        "#services tbody tr[data-service-id]",
        "rows => rows.map(r => ({id: r.dataset.serviceId, ...Object.fromEntries("
        "[...r.querySelectorAll('[data-field]')].map(c => [c.dataset.field, c.dataset.value]))}))",
    )
    expected_ids = sorted({p["service_id"] for p in services(console_server)})
    assert sorted(r["id"] for r in rows) == expected_ids
    healthy, qps, errors = (by_service(console_server, e, at) for e in (HEALTHY, QPS, ERRORS))
    for row in rows:
        sid = row["id"]
        assert float(row["healthy"]) == healthy.get(sid, 0.0), row
        assert close(float(row["qps"]), qps.get(sid, 0.0)), (row, qps)
        assert close(float(row["errors"]) if row["errors"] else None, errors.get(sid)), (row, errors)
        sketch = api(
            console_server, "sketch_quantiles", metric="infer_service_first_token_cost", service_id=sid,
            start=at - 900, end=at, period="1m", q="0.99",
        )["data"]["periods"]  # fmt: skip
        with_requests = [p for p in sketch if p["count"] > 0]
        assert with_requests, "the demo's proxies measured no TTFT"
        assert close(float(row["ttft"]), with_requests[-1]["quantiles"]["0.99"]), (row, with_requests[-1])
        events = api(console_server, "events", kind="service", service_id=sid, limit=500)["data"]["events"]
        latest = max((e for e in events if STATUS.search(e["message"])), key=lambda e: e["lastTimestamp"])
        announced = STATUS.search(latest["message"])
        assert announced is not None
        assert row["status"] == announced.group(1).capitalize(), (row, latest)
    log.assert_clean()


REGEX_SYNTAX = re.compile(r"([.*+?^${}()|\[\]\\])")


def fill(expr: str, values: dict[str, str]) -> str:
    """Grafana's variables replaced as Grafana does: the value with its regex syntax escaped (and
    nothing else, so a plain value stays a literal the sketch series can select on), or ``.*``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "period":
            return values["period"]
        if name == "__range":  # the span shown, the page's default unless a test chose one
            return values.get("span", "15m")
        value = values.get(name, "")
        if not value:
            return ".*"
        return REGEX_SYNTAX.sub(r"\\\1", value).replace("\\", "\\\\").replace('"', '\\"')

    return re.sub(r"\$(\w+)", one, expr)


def legend(text: str, metric: dict[str, str]) -> str:
    """Grafana's legend format; where it names nothing the series has, the series' own name."""
    named = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), text)
    if named:
        return named
    labels = ", ".join(f'{k}="{v}"' for k, v in metric.items() if k != "__name__")
    return f"{metric.get('__name__', '')}{{{labels}}}"


def expected_charts(
    server: ConsoleServer, level: str, values: dict[str, str], start: int, end: int, step: int
) -> dict[str, list[tuple[str, list[float | None]]]]:
    """Per panel of ``level``, its series as query_range answers them on the page's grid."""
    n = (end - start) // step + 1
    out = {}
    for row in console_settings()["views"][level]:
        for panel in row["panels"]:
            series = []
            for q in panel["queries"]:
                data = api(
                    server, "query_range", query=fill(q["expr"], values), start=start, end=end, step=step
                )
                for r in data["data"]["result"]:
                    ys: list[float | None] = [None] * n
                    for t, v in r["values"]:
                        ys[round((t - start) / step)] = number(v)
                    series.append((legend(q["legend"], r["metric"]), ys))
            out[panel["title"]] = sorted(series, key=lambda s: s[0])
    return out


def assert_charts_match(page: Page, server: ConsoleServer, values: dict[str, str]) -> dict[str, Any]:
    grid = page.eval_on_selector("#panels", "el => ({...el.dataset})")
    start, end, step = int(grid["start"]), int(grid["end"]), int(grid["step"])
    assert grid["period"] == values["period"]
    expected = expected_charts(server, grid["level"], values, start, end, step)
    drawn = {c["title"]: c for c in page.evaluate(READ_CHARTS)}
    assert set(drawn) == set(expected)
    for title, chart in drawn.items():
        got = sorted(((s["label"], s["ys"]) for s in chart["series"]), key=lambda s: s[0])
        want = expected[title]
        assert [g[0] for g in got] == [w[0] for w in want], title
        for (label, ys), (_, want_ys) in zip(got, want, strict=True):
            assert all(close(a, b) for a, b in zip(ys, want_ys, strict=True)), (title, label, ys, want_ys)
        if chart["drawn"]:
            assert chart["xs"] == list(range(start, end + 1, step)), title
    inked = page.evaluate(INK_AT_FIRST_POINT)
    assert inked, "no chart drawn"
    assert all(inked.values()), inked
    return grid


def test_charts_draw_what_promql_answers_through_period_switch_and_drill_down(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    pod = services(console_server)[0]
    values = {"service_id": pod["service_id"], "project_id": pod["project_id"], "period": "1m"}
    goto(page, console_server, f"service?id={pod['service_id']}", "#panels[data-state=ready]")
    grid = assert_charts_match(page, console_server, values)
    assert grid["level"] == "service"
    assert grid["step"] == "60"
    drawn = [c for c in page.evaluate(READ_CHARTS) if c["drawn"]]
    assert len(drawn) >= 20, "most of table 1-58's charts have the demo's data"

    # The period, from the keyboard: 5 min is a focusable button that Enter presses.
    generation = int(page.get_attribute("#panels", "data-generation") or "0")
    page.focus("button[data-period='5m']")
    page.keyboard.press("Enter")
    page.wait_for_function(
        f"() => {{ const p = document.querySelector('#panels'); "
        f"return +p.dataset.generation > {generation} && p.dataset.state === 'ready'; }}"
    )
    assert page.get_attribute("button[data-period='5m']", "aria-pressed") == "true"
    grid = assert_charts_match(page, console_server, {**values, "period": "5m"})
    assert grid["step"] == "300"

    # Drill down: a deployment, then one pod; below service level only resource charts show.
    page.select_option("#drill-group", pod["group_id"])
    page.wait_for_selector("#panels[data-state=ready][data-level=deployment]")
    assert_charts_match(page, console_server, {**values, "period": "5m", "group_id": pod["group_id"]})
    page.select_option("#drill-pod", pod["source"])
    page.wait_for_selector("#panels[data-state=ready][data-level=pod]")
    pod_values = {**values, "period": "5m", "group_id": pod["group_id"], "pod": pod["source"]}
    assert_charts_match(page, console_server, pod_values)
    rows = page.eval_on_selector_all("#panels section.row h2", "hs => hs.map(h => h.textContent)")
    assert rows == ["Resources"]
    labels = {s["label"] for c in page.evaluate(READ_CHARTS) for s in c["series"]}
    assert labels
    assert all(label.startswith(pod["source"]) for label in labels), labels
    # The view is in the address: reloading it shows the same drill-down and period.
    assert f"pod={pod['source']}" in page.url
    assert "period=5m" in page.url
    page.reload()
    page.wait_for_selector("#panels[data-state=ready][data-level=pod][data-period='5m']")
    log.assert_clean()


def table_rows(page: Page, selector: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr[data-kind]",
        "rows => rows.map(r => ({kind: r.dataset.kind, type: r.dataset.type, "
        "text: r.textContent, count: r.querySelector('[data-field=count]').textContent}))",
    )


def wait_events(page: Page, condition: str) -> None:
    """Until the event table is loaded and every row satisfies ``condition`` (JS, of ``r``)."""
    page.wait_for_function(
        "() => { const t = document.querySelector('#events'); const rows = "
        "[...t.querySelectorAll('tbody tr[data-kind]')]; return t.dataset.state === 'ready' && "
        f"rows.every(r => {condition}); }}"
    )


def test_event_filters_and_live_updates(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    goto(page, console_server, "events", "#events[data-state=ready]")
    everything = api(console_server, "events", limit=50)["data"]["events"]
    assert len(table_rows(page, "#events")) == len(everything) > 0

    page.select_option("#filter-kind", "pod")
    wait_events(page, "r.dataset.kind === 'pod'")
    pods_only = api(console_server, "events", kind="pod", limit=50)["data"]["events"]
    assert [r["count"] for r in table_rows(page, "#events")] == [str(e["count"]) for e in pods_only]

    page.select_option("#filter-type", "Alarm")
    wait_events(page, "r.dataset.kind === 'pod' && r.dataset.type === 'Alarm'")
    alarms = api(console_server, "events", kind="pod", type="Alarm", limit=50)["data"]["events"]
    assert len(table_rows(page, "#events")) == len(alarms) > 0
    assert "type=Alarm" in page.url
    assert "kind=pod" in page.url

    # Live: an event sent now shows without a reload, under the filters that match it.
    page.select_option("#filter-type", "")
    page.select_option("#filter-kind", "service")
    wait_events(page, "r.dataset.kind === 'service'")
    page.wait_for_selector("#live[data-state=live]")
    pod = services(console_server)[0]
    marker = f"console live update {uuid.uuid4()}"
    event = {
        "kind": "service",
        "type": "Warning",
        "reason": "ConsoleLiveTest",
        "message": marker,
        "object": {k: pod[k] for k in ("project_id", "service_id", "service_name")},
    }
    with console_server.client() as client:
        assert client.post("/api/v1/events", json=event).status_code == 200
    page.locator("#events tbody tr", has_text=marker).wait_for()
    assert page.locator("#events tbody tr.fresh", has_text=marker).count() == 1

    page.fill("#filter-q", "ConsoleLiveTest")
    wait_events(page, "r.textContent.includes('ConsoleLiveTest')")
    assert len(table_rows(page, "#events")) == 1
    log.assert_clean()


def trace_ids(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "#traces tbody tr[data-trace-id]", "rows => rows.map(r => r.dataset.traceId)"
    )


def search_traces(page: Page, **fields: str) -> None:
    """Fill the audit filters, search, and wait for the answer."""
    before = page.get_attribute("#traces", "data-searches") or "0"
    for name, value in fields.items():
        if name == "trace_rating":
            page.select_option("#audit-rating", value)
        elif name == "size":
            page.select_option("#audit-size", value)
        else:
            page.fill(f"#audit-{name}", value)
    page.click("#audit-search")
    page.wait_for_function(
        f"() => {{ const t = document.querySelector('#traces'); "
        f"return +(t.dataset.searches || 0) > {before} && t.dataset.state === 'ready'; }}"
    )


def test_audit_search_pages_details_and_chain(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    now_ms = int(time.time() * 1000)
    paging = [
        {"trace_name": "ConsolePagingTest", "resource_type": "serviceV2", "resource_name": f"svc-{i}",
         "time": now_ms - 1000 * i, "code": "200"}
        for i in range(12)
    ]  # fmt: skip
    with console_server.client() as client:
        assert client.post("/api/v1/audit/traces", json={"traces": paging}).status_code == 200
    goto(page, console_server, "audit", "#traces[data-state=ready]")
    page.wait_for_selector("#verdict[data-state=intact]")
    everything = api(console_server, "audit/traces", limit=20, **{"from": now_ms - 7 * 86_400_000})["traces"]
    assert trace_ids(page) == [t["trace_id"] for t in everything]

    # Pagination: 10 per page, the API's marker from page to page, back again.
    search_traces(page, trace_name="ConsolePagingTest", size="10")
    first = api(console_server, "audit/traces", trace_name="ConsolePagingTest", limit=10)
    assert trace_ids(page) == [t["trace_id"] for t in first["traces"]]
    page.click("#audit-next")
    page.wait_for_selector("#traces[data-state=ready][data-page='2']")
    second = api(
        console_server,
        "audit/traces",
        trace_name="ConsolePagingTest",
        limit=10,
        next=first["meta_data"]["marker"],
    )
    assert trace_ids(page) == [t["trace_id"] for t in second["traces"]]
    assert len(second["traces"]) == 2
    assert page.is_disabled("#audit-next")
    page.click("#audit-prev")
    page.wait_for_selector("#traces[data-state=ready][data-page='1']")
    assert trace_ids(page) == [t["trace_id"] for t in first["traces"]]

    # The CTS filters, each answered as the API answers them.
    for fields, params in (
        ({"trace_name": "StopDeployment"}, {"trace_name": "StopDeployment"}),
        ({"trace_name": "", "trace_rating": "warning"}, {"trace_rating": "warning"}),
        (
            {"trace_rating": "", "resource_type": "serviceV2", "user": "ml-platform-admin"},
            {"resource_type": "serviceV2", "user": "ml-platform-admin"},
        ),
        ({"resource_type": "", "user": "", "resource_name": "demo-svc-1"}, {"resource_name": "demo-svc-1"}),
    ):
        search_traces(page, **fields)
        want = api(console_server, "audit/traces", limit=10, **params)["traces"]
        assert want, params
        assert trace_ids(page) == [t["trace_id"] for t in want], params

    # A record's request and response, secrets masked as stored.
    search_traces(page, resource_name="", trace_name="CreateServiceV2")
    page.locator("#traces tbody tr[data-trace-id]").first.get_by_role("button", name="Details").click()
    request = page.inner_text("#traces .detail pre.request")
    assert '"instances": 2' in request
    assert "sk-demo-secret" not in request
    assert page.inner_text("#traces .detail pre.response")
    log.assert_clean()


def alert_states(groups: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted(
        (a["labels"]["alertname"], a["state"])
        for g in groups
        for r in g["rules"]
        for a in r.get("alerts", [])
    )


def test_alerts_page_lists_firing_and_pending_with_rule_links(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    deadline = time.monotonic() + 180
    while not alert_states(api(console_server, "rules")["data"]["groups"]):
        assert time.monotonic() < deadline, "no alert fired or went pending on the demo's data"
        time.sleep(1)
    # Alerts move on every evaluation: compare a page read between two equal API reads.
    for _ in range(20):
        before = alert_states(api(console_server, "rules")["data"]["groups"])
        goto(page, console_server, "alerts", "#alerts[data-state=ready]")
        shown = sorted(
            page.eval_on_selector_all(
                "#firing tbody tr[data-alertname], #pending tbody tr[data-alertname]",
                "rows => rows.map(r => [r.dataset.alertname, r.dataset.state])",
            )
        )
        after = alert_states(api(console_server, "rules")["data"]["groups"])
        if before == after:
            assert [tuple(s) for s in shown] == before
            break
    else:
        pytest.fail("the alerts never held still for one page load")
    link = page.locator("#firing a.rule-link, #pending a.rule-link").first
    name = link.locator("xpath=ancestor::tr").get_attribute("data-alertname")
    link.click()
    page.wait_for_selector("#rule-expr")
    rules = [
        r for g in api(console_server, "rules")["data"]["groups"] for r in g["rules"] if r["name"] == name
    ]
    assert page.inner_text("#rule-expr") in {r["query"] for r in rules}
    log.assert_clean()


def test_login_and_tenancy(browser: Browser, console_server: ConsoleServer) -> None:
    """Auth on: the page asks for a key; a key of another project sees none of the demo's services,
    a key of the demo's project sees them all; a wrong key is refused, saying so."""
    project = services(console_server)[0]["project_id"]
    with console_server.client() as client:
        keys = {
            name: client.post(
                "/api/v1/admin/keys",
                json={"project_id": p, "permissions": ["read"], "name": f"console-{name}"},
            ).json()["data"]["key"]
            for name, p in (("other", "console-other-project"), ("demo", project))
        }
    page, log = open_page(browser, None)
    try:
        page.goto(f"{console_server.url}/")
        page.wait_for_selector("#api-key")
        assert page.url.endswith("#/login")
        shot(page, "login")
        page.fill("#api-key", keys["other"])
        page.keyboard.press("Enter")
        page.wait_for_selector("#services[data-state=ready]")
        assert page.locator("#services tbody tr[data-service-id]").count() == 0
        assert "No service" in page.inner_text("#services")
        page.get_by_role("button", name="Log out").click()
        page.wait_for_selector("#api-key")
        page.fill("#api-key", keys["demo"])
        page.click("form.login button[type=submit]")
        page.wait_for_selector("#services[data-state=ready]")
        shown = page.eval_on_selector_all(
            "#services tbody tr[data-service-id]", "rs => rs.map(r => r.dataset.serviceId)"
        )
        assert sorted(shown) == sorted({p["service_id"] for p in services(console_server)})
        log.assert_clean()

        page.get_by_role("button", name="Log out").click()
        page.fill("#api-key", "not-a-key-of-this-server")
        page.keyboard.press("Enter")
        page.wait_for_selector("#login-status .note-error")
        assert "refused" in page.inner_text("#login-status")
    finally:
        page.context.close()


def test_keyboard_reaches_every_section(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer
) -> None:
    page, log = logged_in
    goto(page, console_server, "services", "#services[data-state=ready]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for section, ready in (("Events", "#events"), ("Audit", "#traces"), ("Alerts", "#alerts")):
        page.evaluate("document.activeElement.blur()")
        for _ in range(12):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == section:
                break
        else:
            pytest.fail(f"Tab never reached the {section} link")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"{ready}[data-state=ready]")
        assert page.get_attribute(f"nav a:text-is('{section}')", "aria-current") == "page"
    log.assert_clean()


LABEL_VALUES = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=LABEL_VALUES)
def test_a_label_value_in_a_query_matches_only_itself(
    logged_in: tuple[Page, PageLog], console_server: ConsoleServer, value: str
) -> None:
    """The page writes a chosen deployment or pod as ``label=~"…"``: whatever its characters, the
    matcher PromQL parses from it matches exactly that value."""
    import promql_parser
    import re2

    page, _ = logged_in
    if not page.url.startswith(console_server.url):
        page.goto(f"{console_server.url}/#/no-such-page")
    text = page.evaluate(
        "async (v) => { const d = await import('/console/js/dom.js');"
        " return d.promString(d.regexLiteral(v)); }",
        value,
    )
    selector = promql_parser.parse(f'{{source=~"{text}"}}')
    assert isinstance(selector, promql_parser.VectorSelector)
    matcher = selector.matchers.matchers[0]
    assert re2.fullmatch(matcher.value, value)
    assert not re2.fullmatch(matcher.value, value + "x")
