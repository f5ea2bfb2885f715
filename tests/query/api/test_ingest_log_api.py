"""Remote write and HTTP ingest in front of the ingest log (as ``infersight server`` runs them): a
request is answered once logged; a store outage is no error (the samples are delivered once it is
back, and after a restart); bad bodies and series the store would refuse keep their 400 and are not
logged; a full log is a 503."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from exporters.ingest_log import IngestLog
from model.labels import Matcher, MatchOp
from query.api.app import create_app
from query.api.remote_write import LOG_DECODERS, encode_write_request
from store.backend import StoreUnavailableError
from store.open import Store, open_store
from store.writes import SampleWriter

T0 = 1_764_000_000_000
BODY = encode_write_request(
    [
        ({"__name__": "rw", "job": "a"}, [(T0, 1.0), (T0 + 1000, 2.0)]),
        ({"__name__": "rw", "job": "b"}, [(T0, math.inf)]),
    ]
)
BAD_BODY = encode_write_request([({"__name__": "rw", "job": "bad\udcff"}, [(T0, 3.0)])])
STORED = {"a": [(T0, 1.0), (T0 + 1000, 2.0)], "b": [(T0, math.inf)]}


class FlakyBackend:
    """The store's backend, refusing inserts (as unreachable) while ``down``."""

    def __init__(self, backend: object) -> None:
        self._backend = backend
        self.down = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)

    def insert(self, table: str, rows: pa.Table) -> None:
        if self.down:
            raise StoreUnavailableError("down")
        self._backend.insert(table, rows)  # type: ignore[attr-defined]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


def _log(writer: SampleWriter, folder: Path, **options: float) -> IngestLog:
    return IngestLog(writer, folder, decoders=LOG_DECODERS, retry_interval_s=0.0, **options)  # type: ignore[arg-type]


def _client(store: Store, log: IngestLog) -> TestClient:
    return TestClient(create_app(store, ingest_log=log))


def _points(store: Store, name: str) -> dict[str, list[tuple[int, float]]]:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, 2 * T0)
    return {
        s.labels.get("job", ""): list(zip(s.ts_ms.tolist(), s.values.tolist(), strict=True)) for s in series
    }


def test_remote_write_is_acknowledged_once_logged_and_stored_on_flush(store: Store, tmp_path: Path) -> None:
    log = _log(store.writer, tmp_path / "wal")
    client = _client(store, log)
    assert client.post("/api/v1/write", content=BODY).status_code == 204
    assert client.post("/api/v1/write", content=BAD_BODY).status_code == 400  # refused at the door
    assert log.flush()
    assert _points(store, "rw") == STORED


def test_store_outage_is_accepted_and_delivered_later(store: Store, tmp_path: Path) -> None:
    flaky = FlakyBackend(store.backend)
    writer = SampleWriter(flaky)  # type: ignore[arg-type]
    log = _log(writer, tmp_path / "wal")
    client = _client(store, log)
    flaky.down = True
    assert client.post("/api/v1/write", content=BODY).status_code == 204  # not 503: it is logged
    batch = {"series": [{"labels": {"__name__": "shipped", "job": "c"}, "samples": [[T0, "5"]]}]}
    response = client.post("/api/v1/ingest", json=batch)
    assert response.status_code == 200
    assert response.json()["data"] == {"samples": 1}
    assert not log.flush()
    assert _points(store, "rw") == {}
    flaky.down = False
    assert log.flush()
    assert _points(store, "rw") == STORED
    assert _points(store, "shipped") == {"c": [(T0, 5.0)]}


def test_a_logged_request_survives_a_restart(store: Store, tmp_path: Path) -> None:
    """The server dies with the request logged but not inserted; the next one replays the body."""
    flaky = FlakyBackend(store.backend)
    flaky.down = True
    first = _log(SampleWriter(flaky), tmp_path / "wal")  # type: ignore[arg-type]
    assert _client(store, first).post("/api/v1/write", content=BODY).status_code == 204
    first.queue.close()  # no stop: killed
    second = _log(store.writer, tmp_path / "wal")
    assert second.pending_samples == 3
    assert second.flush()
    assert _points(store, "rw") == STORED


@pytest.mark.parametrize("body", [b"", b"not snappy at all", b"\x05\x00garbage"])
def test_bad_bodies_are_still_400_and_not_logged(store: Store, tmp_path: Path, body: bytes) -> None:
    log = _log(store.writer, tmp_path / "wal")
    assert _client(store, log).post("/api/v1/write", content=body).status_code == 400
    assert log.accepted_samples == 0


def test_a_full_log_is_503_so_senders_retry(store: Store, tmp_path: Path) -> None:
    flaky = FlakyBackend(store.backend)
    flaky.down = True
    log = _log(SampleWriter(flaky), tmp_path / "wal", max_bytes=len(BODY) + 20)  # type: ignore[arg-type]
    client = _client(store, log)
    assert client.post("/api/v1/write", content=BODY).status_code == 204
    assert client.post("/api/v1/write", content=BODY).status_code == 503
    batch = {"series": [{"labels": {"__name__": "shipped"}, "samples": [[T0, "5"]]}]}
    full = client.post("/api/v1/ingest", json=batch)
    assert full.status_code == 503
    assert full.json()["errorType"] == "unavailable"
    assert log.refused_samples == 4
    flaky.down = False
    assert log.flush()
    assert _points(store, "rw") == STORED
