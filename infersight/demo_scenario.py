"""What the demo does besides load: a pod crash and restart, and the platform's management calls.

The crash stops one simulated pod (its scrapes fail, the service goes to ALARM) and later starts a
fresh engine on the same port (counters restart from zero: a restart). The management calls are
the audit traces an inference platform would send (the guide's trace names, table 1-62).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import httpx

from simulator.server import SimulatorServer


async def crash_and_restart(
    pods: list[SimulatorServer],
    retired: list[SimulatorServer],
    crash_at_s: float,
    restart_at_s: float,
    stop: asyncio.Event,
    say: Callable[[str], None],
) -> None:
    """Stop the last pod at ``crash_at_s``, start a fresh one on its port at ``restart_at_s``."""
    started = time.monotonic()

    async def until(offset_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, started + offset_s - time.monotonic()))
        return not stop.is_set()

    if not await until(crash_at_s):
        return
    victim = pods[-1]
    port = victim.port
    say(f"demo: crashing pod on port {port} (its scrapes will fail)")
    await victim.stop(grace_s=0.1)
    if not await until(restart_at_s):
        # Restart anyway so the final scrape and summary see a running pod.
        pass
    fresh = SimulatorServer(victim.sim.config, port=port or 0)
    await fresh.start()
    retired.append(victim)
    pods[-1] = fresh
    say(f"demo: pod on port {port} restarted (a fresh engine: counters start again)")


def platform_traces(services: dict[str, str], project_id: str, now_ms: int) -> list[dict[str, Any]]:
    """The management calls the demo's platform makes, as CTS-shaped traces."""
    user = {"id": "0a1b2c3d", "name": "ml-platform-admin", "domain": {"id": "d0", "name": "demo-tenant"}}
    traces = []
    for i, (service_id, name) in enumerate(services.items()):
        common = {
            "resource_type": "serviceV2",
            "resource_id": service_id,
            "resource_name": name,
            "project_id": project_id,
            "user": user,
            "source_ip": "192.0.2.10",
            "trace_type": "ApiCall",
            "service_type": "ModelArts",
        }
        traces += [
            {
                **common,
                "trace_name": "CreateServiceV2",
                "time": now_ms - 60_000 + i,
                "code": "200",
                "request": {"name": name, "instances": 2, "api_key": "sk-demo-secret"},
            },
            {**common, "trace_name": "CreateDeployment", "time": now_ms - 50_000 + i, "code": "200"},
            {
                **common,
                "trace_name": "ScaleDeployment",
                "time": now_ms - 40_000 + i,
                "code": "200",
                "request": {"instance_count": 2},
            },
        ]
    first_id, first_name = next(iter(services.items()))
    traces.append(
        {
            "trace_name": "StopDeployment",
            "resource_type": "serviceV2",
            "resource_id": first_id,
            "resource_name": first_name,
            "project_id": project_id,
            "user": user,
            "source_ip": "192.0.2.10",
            "trace_rating": "warning",
            "code": "409",
            "message": "Deployment is upgrading; stop refused.",
            "time": now_ms - 30_000,
        }
    )
    return traces


def send_platform_traces(
    api_url: str, traces: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> None:
    with httpx.Client(base_url=api_url, timeout=30.0, headers=headers) as client:
        client.post("/api/v1/audit/traces", json={"traces": traces}).raise_for_status()


def manage_infersight(api_url: str, project_id: str, headers: dict[str, str] | None = None) -> None:
    """infersight's own management calls, each audited: a read-only key for a dashboard, a longer
    pod-event retention (the guide's 7 days with Kubernetes events in LTS)."""
    with httpx.Client(base_url=api_url, timeout=30.0, headers=headers) as client:
        key = {"project_id": project_id, "permissions": ["read"], "name": "grafana-readonly"}
        client.post("/api/v1/admin/keys", json=key).raise_for_status()
        client.put("/api/v1/admin/retention", json={"pod_events_ms": 7 * 86_400_000}).raise_for_status()


def read_events_and_traces(
    api_url: str, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Events (folded), traces (newest first) and the chain verdict, through the HTTP APIs."""
    with httpx.Client(base_url=api_url, timeout=30.0, headers=headers) as client:
        events = client.get("/api/v1/events", params={"limit": 100}).json()["data"]["events"]
        traces = client.get("/api/v1/audit/traces", params={"limit": 50}).json()["traces"]
        verdict = client.get("/api/v1/audit/verify").json()["data"]
    return events, traces, verdict


def format_events(events: list[dict[str, Any]]) -> str:
    rows = [["kind", "type", "reason", "object", "occurrences", "message"]]
    for e in events:
        obj = e["object"]["pod"] or e["object"]["service_name"] or e["object"]["service_id"]
        rows.append([e["kind"], e["type"], e["reason"], obj, str(e["count"]), e["message"]])
    return _table(rows)


def format_traces(traces: list[dict[str, Any]]) -> str:
    rows = [["time", "trace_name", "rating", "resource", "user", "code"]]
    for t in traces:
        when = time.strftime("%H:%M:%S", time.gmtime(t["time"] / 1000))
        rows.append(
            [when, t["trace_name"], t["trace_rating"], t["resource_name"], t["user"]["name"], t["code"]]
        )
    return _table(rows)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
