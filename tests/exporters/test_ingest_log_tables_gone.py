"""Tables vanish under a running server (ClickHouse lost its data, a database dropped by hand): the
ingest log applies the schema again and inserts the acknowledged block, it drops nothing — against a
real ClickHouse 18.16 and chDB. Samples of series the writer had stored before are readable after
(their series rows are written again)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.ingest_log import IngestLog
from exporters.segments import columns_of
from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from store.admission import TS_MAX_MS
from store.open import Store, open_store
from tests.store.clickhouse_server import ClickHouseServer, require_binary

T0 = 1_764_000_000_000
_databases = itertools.count()


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    require_binary()
    server = ClickHouseServer(tmp_path_factory.mktemp("clickhouse")).start()
    yield server
    server.stop()


@pytest.fixture(params=["clickhouse", "chdb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "chdb":
        opened = open_store(f"chdb://{tmp_path / 'data'}")
    else:
        server: ClickHouseServer = request.getfixturevalue("clickhouse")
        opened = open_store(server.dsn(f"gone{next(_databases)}"))
    yield opened
    if request.param == "clickhouse":
        opened.backend.execute(f"DROP DATABASE IF EXISTS {opened.backend.database}")
    opened.close()


def _batch(job: str, start: int, n: int) -> list[Sample]:
    labels = to_labels({"__name__": "kept", "job": job})
    return [Sample(labels, T0 + start + i, float(i)) for i in range(n)]


def _stamps(store: Store) -> dict[str, list[int]]:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, "kept")], 0, TS_MAX_MS)
    return {s.labels["job"]: sorted(s.ts_ms.tolist()) for s in series}


@pytest.mark.parametrize("what", ["tables", "database"])
def test_a_block_whose_tables_vanished_is_retried_not_dropped(
    store: Store, tmp_path: Path, what: str
) -> None:
    log = IngestLog(store.writer, tmp_path / "wal", retry_interval_s=0.0)
    log.append(columns_of(_batch("before", 0, 5)))
    assert log.flush()
    assert _stamps(store) == {"before": [T0 + i for i in range(5)]}
    db = store.backend.database
    if what == "tables":
        for table in ("samples", "series"):
            store.backend.execute(f"DROP TABLE {db}.{table}")
    else:
        store.backend.execute(f"DROP DATABASE {db}")
    # Acknowledged while the tables are gone: a series the writer had stored, and a new one.
    log.append(columns_of(_batch("before", 100, 3)))
    log.append(columns_of(_batch("after", 0, 4)))
    for _ in range(3):  # the first insert finds the tables gone, the schema is applied, then it goes in
        if log.flush():
            break
    else:
        pytest.fail("the block never went in")
    assert log.schema_repairs == 1
    assert log.rejected_samples == 0
    assert "store_refused" not in store.writer.guard.dropped
    assert _stamps(store) == {"before": [T0 + 100 + i for i in range(3)], "after": [T0 + i for i in range(4)]}
    assert log.pending_samples == 0
