"""A store filled by the demo (~30 s of simulated services) and the API over it, for query tests."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from alerts.evaluator import Evaluator
from alerts.rules import RuleFile
from alerts.state import Alert
from infersight.config import load_config
from infersight.demo import run_demo
from query.api.app import create_app
from query.promql.engine import Engine
from store.open import Store, open_store

RANGE_S = 15 * 60  # the console's default view
STEP_S = 15


@dataclass
class DemoApi:
    """The API over the demo's store; ``end_s`` is when the demo stopped."""

    store: Store
    client: TestClient
    end_s: float
    alerts_sent: dict[str, list[Alert]] = field(default_factory=dict)

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"/api/v1/{path}", params=params)
        body = response.json()
        assert response.status_code == 200, (path, params, body)
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    def label_values(self, label: str, selector: str | None) -> list[str]:
        params: dict[str, Any] = {"start": self.end_s - RANGE_S, "end": self.end_s}
        if selector:
            params["match[]"] = selector
        values: list[str] = self.get(f"label/{label}/values", **params)
        return values

    def has_data(self, expr: str, instant: bool) -> bool:
        """True when the query gives at least one finite value over the dashboard's default range."""
        if instant:
            result = self.get("query", query=expr, time=self.end_s)["result"]
            return any(math.isfinite(float(r["value"][1])) for r in result)
        data = self.get("query_range", query=expr, start=self.end_s - RANGE_S, end=self.end_s, step=STEP_S)
        return any(math.isfinite(float(v)) for r in data["result"] for _, v in r["values"])


def run_demo_store(tmp: Path, duration_s: float = 30) -> str:
    """Run the demo in-process for ``duration_s``; returns the store's DSN."""
    dsn = f"chdb://{tmp / 'data'}"
    config = load_config(
        None,
        [
            f"store.dsn={dsn}",
            "server.listen=127.0.0.1:0",
            f"dashboards.out_dir={tmp / 'dashboards'}",
            f"demo.duration_s={duration_s}",
            "demo.concurrency=6",
            "demo.scrape_interval_s=5",
        ],
    )
    asyncio.run(run_demo(config))
    return dsn


def open_api(dsn: str) -> DemoApi:
    store = open_store(dsn)
    return DemoApi(store, TestClient(create_app(store)), time.time())


def evaluate_alerts(
    api: DemoApi, rules: RuleFile, rounds: int = 4, interval_s: int = 10
) -> tuple[Evaluator, list[Alert]]:
    """Run the evaluator over the demo's data for the last ``rounds`` intervals, writing ALERTS."""
    engine = Engine(api.store.querier)
    evaluator = Evaluator(rules, engine.instant, api.store.writer.write, interval_ms=interval_s * 1000)
    end_ms = int(api.end_s * 1000)
    sent: list[Alert] = []
    for i in reversed(range(rounds)):
        sent += evaluator.evaluate(end_ms - i * interval_s * 1000)
    assert evaluator.failed_evaluations == 0, "a rule of the pack failed on the demo's store"
    return evaluator, sent
