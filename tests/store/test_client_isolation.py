"""One client's bad data costs another client nothing, on both backends: client A's acknowledged
samples are all readable after client B sent samples the store cannot hold — refused at the door
(400, naming the series), or, past the door, dropped and counted while A's share of the insert block
is stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from exporters.ingest_log import IngestLog
from exporters.segments import columns_of
from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from query.api.remote_write import LOG_DECODERS, RemoteWriteEndpoint, encode_write_request
from store.admission import TS_MAX_MS
from store.limits import Limits
from store.open import Store
from store.writes import SampleWriter

NOW_S = 1_764_000_000.0
T0 = int(NOW_S * 1000)
DAY = 86_400_000
# What B sends: before 1970 (chDB refuses the whole block for its series row's Date), past what
# DateTime holds (18.16 wraps it into 1970), and a stamp that is not a date at all.
BAD_STAMPS = [-1, -3 * DAY, TS_MAX_MS + 1, 2**62, -(2**63)]


def _post(app: RemoteWriteEndpoint, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post("/api/v1/write", content=body)

    return asyncio.run(go())


def _a_points(store: Store) -> set[tuple[str, int, float]]:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, "a_metric")], 0, TS_MAX_MS)
    return {
        (s.labels["pod"], t, v)
        for s in series
        for t, v in zip(s.ts_ms.tolist(), s.values.tolist(), strict=True)
    }


def _a_request(k: int) -> tuple[bytes, set[tuple[str, int, float]]]:
    """Client A's k-th request: 3 series, 4 points each, spread over 150 days (more partitions than
    one insert may touch)."""
    points = {(f"p{j}", T0 - (k * 12 + j * 4 + i) * DAY, float(k + i)) for j in range(3) for i in range(4)}
    series: dict[str, list[tuple[int, float]]] = {}
    for pod, ts, value in points:
        series.setdefault(pod, []).append((ts, value))
    return encode_write_request(
        [({"__name__": "a_metric", "pod": p}, pts) for p, pts in series.items()]
    ), points


@pytest.fixture
def writer(store: Store) -> SampleWriter:
    return SampleWriter(store.backend, limits=Limits(max_future_s=3600.0), clock=lambda: NOW_S)


def test_a_clients_acknowledged_samples_survive_b_sending_bad_stamps(
    store: Store, writer: SampleWriter, tmp_path: Path
) -> None:
    log = IngestLog(writer, tmp_path / "wal", decoders=LOG_DECODERS, retry_interval_s=0.0)
    app = RemoteWriteEndpoint(writer, log=log)
    acknowledged: set[tuple[str, int, float]] = set()
    for k, stamp in enumerate(BAD_STAMPS):
        body, points = _a_request(k)
        assert _post(app, body).status_code == 204
        acknowledged |= points
        bad = encode_write_request([({"__name__": "b_metric", "pod": "b"}, [(T0, 1.0), (stamp, 2.0)])])
        answer = _post(app, bad)
        assert answer.status_code == 400
        assert 'series {__name__="b_metric", pod="b"}' in answer.text
        assert "out of bounds" in answer.text
    assert log.flush()
    assert _a_points(store) == acknowledged
    assert store.querier.select([Matcher("__name__", MatchOp.EQ, "b_metric")], 0, TS_MAX_MS) == []
    assert app.admission.refused_requests == {"timestamp_out_of_range": len(BAD_STAMPS)}


def test_past_the_door_a_bad_stamp_in_the_same_block_costs_a_nothing(
    store: Store, writer: SampleWriter, tmp_path: Path
) -> None:
    """B's samples reach the log without the door (a sidecar's batch, a replay): the block holding
    them and A's samples is stored but for B's bad stamps, which are counted."""
    log = IngestLog(writer, tmp_path / "wal", decoders=LOG_DECODERS, retry_interval_s=0.0)
    acknowledged: set[tuple[str, int, float]] = set()
    for k, stamp in enumerate(BAD_STAMPS):
        body, points = _a_request(k)
        assert RemoteWriteEndpoint(writer, log=log).accept(body, None) == (204, "")
        acknowledged |= points
        b = [Sample(to_labels({"__name__": "b_metric", "pod": "b"}), ts, 1.0) for ts in (T0, stamp)]
        log.append(columns_of(b))
    assert log.flush()
    assert _a_points(store) == acknowledged
    (b_series,) = store.querier.select([Matcher("__name__", MatchOp.EQ, "b_metric")], 0, TS_MAX_MS)
    assert b_series.ts_ms.tolist() == [T0]
    assert writer.guard.dropped["timestamp_out_of_range"] == len(BAD_STAMPS)
    assert log.counts()["pending"] == 0


def test_a_block_over_many_days_is_stored_whole(store: Store, writer: SampleWriter, tmp_path: Path) -> None:
    """Many clients' requests, one block spanning 400 days: split by partition, nothing refused."""
    log = IngestLog(writer, tmp_path / "wal", decoders=LOG_DECODERS, retry_interval_s=0.0)
    app = RemoteWriteEndpoint(writer, log=log)
    acknowledged: set[tuple[str, int, float]] = set()
    for k in range(10):
        series = [
            ({"__name__": "a_metric", "pod": f"c{k}"}, [(T0 - (k * 40 + i) * DAY, 1.0) for i in range(40)])
        ]
        assert _post(app, encode_write_request(series)).status_code == 204
        acknowledged |= {(f"c{k}", T0 - (k * 40 + i) * DAY, 1.0) for i in range(40)}
    assert log.flush()
    assert _a_points(store) == acknowledged
    assert not writer.guard.dropped
    assert log.counts()["rejected"] == 0
