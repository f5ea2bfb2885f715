"""The server writes its own counters (refused samples, buffer and ingest-log outcomes, door refusals,
auth outcomes and key look-ups) as series."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from infersight.config import config_from_dict
from infersight.run import Runtime
from infersight.self_series import self_samples
from model.labels import to_labels
from model.series import Sample
from query.api.remote_write import encode_write_request


def test_self_samples_name_every_outcome() -> None:
    samples = self_samples(
        5, {"invalid_label": 2}, {"exported": 7, "pending": 1}, {"accepted": 3, "stored": 3, "pending": 0}
    )
    got = {}
    for s in samples:
        labels = dict(s.labels)
        got[labels["__name__"], labels.get("reason") or labels.get("outcome")] = s.value
    assert got == {
        ("infersight_ingest_dropped_samples_total", "invalid_label"): 2.0,
        ("infersight_export_samples_total", "exported"): 7.0,
        ("infersight_export_pending_samples", None): 1.0,
        ("infersight_ingest_log_samples_total", "accepted"): 3.0,
        ("infersight_ingest_log_samples_total", "stored"): 3.0,
        ("infersight_ingest_log_pending_samples", None): 0.0,
    }
    assert all(s.ts_ms == 5 for s in samples)


def test_runtime_writes_refused_samples_as_a_series_it_can_query(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "store": {"dsn": f"chdb://{tmp_path / 'data'}", "rollup_interval_s": 0},
            "server": {"listen": "127.0.0.1:0"},
            "buffer": {"dir": str(tmp_path / "buffer")},
        }
    )

    async def scenario() -> dict[str, float]:
        runtime = Runtime(config)
        await runtime.start()
        try:
            assert runtime.store is not None
            assert runtime.exporter is not None
            bad = Sample(to_labels({"__name__": "x", "bad-label": "v"}), 1_000, 1.0)
            good = Sample(to_labels({"__name__": "x", "ok": "v"}), 1_000, 1.0)
            await asyncio.to_thread(runtime.store.writer.write, [bad, good])
            await runtime.report_self_now()
            await runtime.exporter.flush(force=True)
            async with httpx.AsyncClient(base_url=runtime.api_url) as client:
                response = await client.get("/api/v1/query", params={"query": '{__name__=~"infersight_.*"}'})
            body = response.json()
            assert body["status"] == "success", body
            out = {}
            for r in body["data"]["result"]:
                metric = r["metric"]
                kind = metric.get("reason", metric.get("outcome", ""))
                out[f"{metric['__name__']}/{kind}"] = float(r["value"][1])
            return out
        finally:
            await runtime.stop()

    got = asyncio.run(scenario())
    assert got["infersight_ingest_dropped_samples_total/invalid_label"] == 1.0
    assert "infersight_export_samples_total/exported" in got
    assert "infersight_ingest_log_samples_total/accepted" in got


def test_door_refusals_and_auth_outcomes_are_series_the_api_answers(tmp_path: Path) -> None:
    """Remote write and HTTP ingest refusals by route and reason, 401s and store key look-ups, read
    back through the PromQL API as ``infersight server`` writes them."""
    admin = "self-series-admin-key-0123"
    config = config_from_dict(
        {
            "store": {"dsn": f"chdb://{tmp_path / 'data'}", "rollup_interval_s": 0},
            "server": {"listen": "127.0.0.1:0"},
            "buffer": {"dir": str(tmp_path / "buffer")},
            "auth": {"enabled": True, "admin_key": admin},
        }
    )
    boot = {"Authorization": f"Bearer {admin}"}
    bad_label = encode_write_request([({"__name__": "x", "bad-name": "v"}, [(1_000, 1.0), (2_000, 2.0)])])
    too_late = {"series": [{"labels": {"__name__": "x"}, "samples": [[-5, "1"]]}]}

    async def scenario() -> dict[str, float]:
        runtime = Runtime(config)
        await runtime.start()
        try:
            assert runtime.exporter is not None
            async with httpx.AsyncClient(base_url=runtime.api_url, timeout=60) as client:
                assert (
                    await client.post("/api/v1/write", content=bad_label, headers=boot)
                ).status_code == 400
                assert (await client.post("/api/v1/ingest", json=too_late, headers=boot)).status_code == 400
                for _ in range(2):
                    nobody = {"Authorization": "Bearer isk_nobody"}
                    assert (
                        await client.get("/api/v1/query", params={"query": "1"}, headers=nobody)
                    ).status_code == 401
                await runtime.report_self_now()
                await runtime.exporter.flush(force=True)
                response = await client.get(
                    "/api/v1/query",
                    params={"query": '{__name__=~"infersight_(ingest_refused|auth)_.*"}'},
                    headers=boot,
                )
            body = response.json()
            assert body["status"] == "success", body
            out = {}
            for r in body["data"]["result"]:
                metric = r["metric"]
                key = "/".join(metric.get(k, "") for k in ("__name__", "route", "reason"))
                out[key] = float(r["value"][1])
            return out
        finally:
            await runtime.stop()

    got = asyncio.run(scenario())
    assert got["infersight_ingest_refused_requests_total/remote_write/invalid_label"] == 1.0
    assert got["infersight_ingest_refused_samples_total/remote_write/invalid_label"] == 2.0
    assert got["infersight_ingest_refused_requests_total/ingest/timestamp_out_of_range"] == 1.0
    assert got["infersight_ingest_refused_samples_total/ingest/timestamp_out_of_range"] == 1.0
    assert got["infersight_auth_refused_requests_total//unauthorized"] == 2.0
    assert got["infersight_auth_refused_requests_total//too_many_failures"] == 0.0
    assert got["infersight_auth_refused_requests_total//store_unavailable"] == 0.0
    assert got["infersight_auth_key_store_lookups_total//"] == 1.0  # the second try was cached
