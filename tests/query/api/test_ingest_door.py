"""``POST /api/v1/ingest`` (sidecar batches) in front of the ingest log and a chDB store, as
``infersight server`` runs it: the door checks of remote write (a sample the store would refuse
refuses the batch whole with a 400 naming the series and the reason, counted by reason), a cap on
samples per batch, a bound on the body, and any malformed body — hostile JSON shapes, deep
nesting, huge numbers, non-finite timestamps, wrong types — a 400, never a 500. Whatever is
answered 200 is stored, all of it, and a good batch that follows is stored too."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from exporters.ingest_log import IngestLog
from model.labels import Matcher, MatchOp
from query.api.ingest import build_ingest_router
from query.api.remote_write import LOG_DECODERS
from store.admission import TS_MAX_MS, Admission
from store.open import Store, open_store

T0 = 1_764_000_000_000
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


class Server:
    """The ingest route with a log over a chDB store, small caps; ``post`` sends one request in-process
    (ASGI; an exception in the app fails the test instead of becoming a 500)."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.log = IngestLog(store.writer, folder, decoders=LOG_DECODERS, retry_interval_s=0.0)  # type: ignore[arg-type]
        self.admission = Admission(store.writer.guard, max_samples_per_request=50, max_series_per_request=50)
        app = FastAPI()
        app.include_router(
            build_ingest_router(store.writer, self.log, admission=self.admission, max_body_bytes=1 << 20)
        )
        self.transport = httpx.ASGITransport(app=app)
        self._good = itertools.count()

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://t") as c:
                return await c.post("/api/v1/ingest", content=body, headers=headers)

        return asyncio.run(go())

    def stamps(self, name: str) -> dict[tuple[tuple[str, str], ...], list[int]]:
        series = self.store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, TS_MAX_MS)
        return {
            tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__")): s.ts_ms.tolist()
            for s in series
        }

    def check(self, body: bytes) -> int:
        """Post a hostile body, then a good one: the hostile one is 200 (and stored whole), 400 or
        413 in Prometheus' error shape; the good one is 200 and stored."""
        answer = self.post(body, **{"content-type": "application/json"})
        assert answer.status_code in (200, 400, 413), (answer.status_code, answer.text)
        reply = answer.json()
        if answer.status_code != 200:
            assert reply["status"] == "error", reply
            assert reply["errorType"] == "bad_data", reply
            assert reply["error"], reply
        if currently_in_test_context():
            event(f"answered {answer.status_code}")
        name = f"good_{next(self._good)}"
        good = {
            "series": [{"labels": {"__name__": name, "job": "g"}, "samples": [[T0, "1"], [T0 + 1, "NaN"]]}]
        }
        assert self.post(json.dumps(good).encode()).status_code == 200
        assert self.log.flush()
        assert self.stamps(name) == {(("job", "g"),): [T0, T0 + 1]}
        if answer.status_code == 200:
            self._all_stored(json.loads(body), reply["data"]["samples"])
        return answer.status_code

    def _all_stored(self, body: dict[str, Any], accepted: int) -> None:
        expected: dict[str, set[tuple[tuple[tuple[str, str], ...], int]]] = {}
        count = 0
        for entry in body["series"]:
            if not entry["samples"]:
                continue
            # An empty label value is no label (Prometheus' rule): stored without it.
            labels = {k: v for k, v in entry["labels"].items() if v != ""}
            name = labels.pop("__name__")
            for ts, _ in entry["samples"]:
                expected.setdefault(name, set()).add((tuple(sorted(labels.items())), int(ts)))
                count += 1
        assert accepted == count
        for name, points in expected.items():
            stored = {(labels, t) for labels, stamps in self.stamps(name).items() for t in stamps}
            assert points <= stored, name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ingest")
    store = open_store(f"chdb://{folder / 'data'}")
    yield Server(store, folder / "wal")
    store.close()


def _batch(labels: dict[str, str], *points: tuple[Any, str]) -> bytes:
    return json.dumps({"series": [{"labels": labels, "samples": [list(p) for p in points]}]}).encode()


@pytest.mark.parametrize(
    ("labels", "ts", "reason"),
    [
        ({"__name__": "x"}, -1, "timestamp_out_of_range"),
        ({"__name__": "x"}, TS_MAX_MS + 1, "timestamp_out_of_range"),
        ({"__name__": "x"}, 10**30, "timestamp_out_of_range"),
        ({"__name__": "x", "bad-name": "v"}, T0, "invalid_label"),
        ({"__name__": "1x"}, T0, "invalid_label"),
        ({"job": "no name"}, T0, "missing_metric_name"),
        ({"__name__": "x", "job": "\udcff"}, T0, "invalid_utf8"),
        ({"__name__": "x", **{f"l{i}": "v" for i in range(100)}}, T0, "too_many_labels"),
        ({"__name__": "x", "v": "x" * 100_000}, T0, "label_too_long"),
    ],
)
def test_a_sample_the_store_would_refuse_refuses_the_batch_whole(
    server: Server, labels: dict[str, str], ts: int, reason: str
) -> None:
    before = server.admission.refused_requests[reason]
    good = {"__name__": "door_ok", "job": reason}
    body = json.dumps(
        {
            "series": [
                {"labels": good, "samples": [[T0, "1"]]},
                {"labels": labels, "samples": [[ts, "2"]]},
            ]
        },
        ensure_ascii=False,
    ).encode("utf-8", "surrogatepass")
    answer = server.post(body)
    assert answer.status_code == 400, answer.text
    assert f"({reason})" in answer.json()["error"]
    assert server.admission.refused_requests[reason] == before + 1
    assert server.log.flush()
    assert (("job", reason),) not in server.stamps("door_ok")  # nothing of the batch kept


def test_a_batch_over_the_sample_cap_is_400_and_counted(server: Server) -> None:
    before = server.admission.refused_requests["too_many_samples"]
    over = _batch({"__name__": "capped"}, *[(T0 + i, "1") for i in range(51)])
    answer = server.post(over)
    assert answer.status_code == 400
    assert "too_many_samples" in answer.json()["error"]
    assert server.admission.refused_requests["too_many_samples"] == before + 1
    at_cap = _batch({"__name__": "capped"}, *[(T0 + i, "1") for i in range(50)])
    assert server.post(at_cap).status_code == 200
    assert server.log.flush()
    assert len(server.stamps("capped")[()]) == 50


def test_a_batch_over_the_series_cap_is_400(server: Server) -> None:
    body = json.dumps(
        {
            "series": [
                {"labels": {"__name__": "many", "i": str(i)}, "samples": [[T0, "1"]]} for i in range(25)
            ]
            * 3
        }
    ).encode()
    assert server.post(body).status_code == 400  # 75 samples: the sample cap is met first
    series = [{"labels": {"__name__": "many", "i": str(i)}, "samples": []} for i in range(51)]
    series[0]["samples"] = [[T0, "1"]]
    answer = server.post(json.dumps({"series": series}).encode())
    assert answer.status_code == 200  # series without samples are no series to store
    wide = [{"labels": {"__name__": "many", "i": str(i)}, "samples": [[T0, "1"]]} for i in range(50)]
    assert server.post(json.dumps({"series": wide}).encode()).status_code == 200


def test_a_body_over_the_bound_is_413_by_length_and_by_stream(server: Server) -> None:
    huge = b'{"series": [' + b" " * (2 << 20) + b"]}"
    answer = server.post(huge)
    assert answer.status_code == 413
    assert answer.json()["errorType"] == "bad_data"

    async def streamed() -> httpx.Response:
        async def chunks() -> Any:
            for _ in range(40):
                yield b" " * (64 << 10)

        async with httpx.AsyncClient(transport=server.transport, base_url="http://t") as c:
            return await c.post("/api/v1/ingest", content=chunks())

    assert asyncio.run(streamed()).status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'"series"',
        b'{"series": {}}',
        b'{"series": [1]}',
        b'{"series": [{"labels": [], "samples": []}]}',
        b'{"series": [{"labels": {"__name__": 1}, "samples": []}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[1e999, "1"]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[-Infinity, "1"]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[NaN, "1"]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[1, {"a": 1}]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[1]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[1, "1", 2]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [["abc", "1"]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[' + b"9" * 5000 + b', "1"]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [[' + b"9" * 400 + b', "1"]]}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": "ab"}]}',
        b'{"series": [{"labels": {"__name__": "x"}, "samples": [null]}]}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"series": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        b"\xff\xfe{}",
        b'{"series": [{"labels": {"\\ud800": "x"}, "samples": [[1, "1"]]}]}',
    ],
)
def test_malformed_bodies_are_400(server: Server, body: bytes) -> None:
    assert server.check(body) == 400


@pytest.mark.parametrize(
    "body",
    [
        b'{"series": [{"labels": {"__name__": "big"}, "samples": [[1, 1e999]]}]}',
        b'{"series": [{"labels": {"__name__": "big"}, "samples": [[2, "' + b"9" * 400 + b'"]]}]}',
        b'{"series": [{"labels": {"__name__": "big"}, "samples": [[3, -1e308]]}]}',
        b'{"series": [{"labels": {"__name__": "big"}, "samples": []}]}',
        b'{"series": []}',
    ],
)
def test_values_past_float_range_are_infinities_and_stored(server: Server, body: bytes) -> None:
    assert server.check(body) == 200


_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, T0, TS_MAX_MS, TS_MAX_MS + 1, 2**63, -(2**63) - 1, 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["stale", "NaN", "+Inf", "-Inf", "1e999", "0x10", "", "1_000"]),
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_names = st.one_of(
    st.sampled_from(["__name__", "job", "", "1bad", "a-b", "le", "project_id"]),
    st.text(max_size=8),
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True),
)
_stamps = st.one_of(st.integers(T0 - 10**9, T0 + 10**6), st.integers(T0 - 10**9, T0 + 10**6), _scalar)
_values = st.one_of(st.sampled_from(["1", "0.5", "NaN", "stale", "+Inf", "-Inf"]), _scalar)
_labels = st.one_of(
    st.dictionaries(_names, st.text(max_size=8), max_size=5).map(lambda d: {"__name__": "fz", **d}),
    st.dictionaries(_names, st.text(max_size=8), max_size=5),
    _json,
)
_entry = st.one_of(
    st.fixed_dictionaries(
        {
            "labels": _labels,
            "samples": st.one_of(st.lists(st.tuples(_stamps, _values).map(list), max_size=4), _json),
        }
    ),
    _json,
)
_body = st.one_of(
    st.fixed_dictionaries({"series": st.lists(_entry, max_size=4)}),
    st.dictionaries(st.sampled_from(["series", "x"]), _json, max_size=2),
    _json,
)


@FUZZ
@given(body=_body)
def test_hostile_json_is_stored_whole_or_refused(server: Server, body: Any) -> None:
    server.check(json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@FUZZ
@given(raw=st.binary(max_size=64))
def test_random_bytes(server: Server, raw: bytes) -> None:
    assert server.check(raw) in (400, 200)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(1_000, 150_000), kind=st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_400(server: Server, depth: int, kind: str) -> None:
    closing = "]" if kind == "[" else "}"
    body = ('{"series": ' + kind * depth + "1" + closing * depth + "}").encode()
    assert server.check(body) == 400


def test_what_is_answered_200_reads_back_as_sent(server: Server) -> None:
    points = [(T0, "1"), (T0 + 1, "+Inf"), (T0 + 2, "stale")]
    assert server.check(_batch({"__name__": "roundtrip", "job": "r"}, *points)) == 200
    assert server.stamps("roundtrip") == {(("job", "r"),): [T0, T0 + 1, T0 + 2]}
