"""Hostile scrape bodies through the real sidecar, every engine adapter, both exposition formats.

Property: whatever a target answers, one ``Sidecar.scrape_once`` (the function ``run()`` calls
per tick) returns without raising and hands on a batch with exactly one ``up`` of the target (0
or 1), every ``infersight_scrape_errors_total{reason}`` series at the sidecar's count, and no
series twice. ``up 0`` comes with exactly one failure reason counted for this scrape; ``up 1``
with none (a dropped adapter family or duplicate is counted under its own reason). The batch also
goes through the sidecar's own ``/metrics`` (``Exposition``), which must render in both formats.

Bodies are mutations of the captured real expositions (tests/testdata/captured/engines), served
as Prometheus text and, re-encoded by prometheus-client, as OpenMetrics; plus generated families
of the names each adapter maps, with hostile bucket bounds and values; plus random bytes. A real
HTTP server on a loopback port serves each body; one sidecar per target keeps scraping it, so the
counters are also checked across scrapes. The tally of outcomes is printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from collector import ListConsumer, ScrapeConfig, Sidecar, TargetConfig
from collector.engines import llamacpp, mindie, sglang, tgi, vllm
from collector.exposition import Exposition
from collector.sidecar import ERROR_REASONS, FAILURE_REASONS, PARTIAL_REASONS
from model.labels import METRIC_NAME, to_labels
from model.series import Sample

TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
CAPTURED = Path(__file__).resolve().parents[1] / "testdata" / "captured" / "engines"
SOURCES = {
    "vllm": ["vllm/vllm_datadog_fixture_opt-125m.prom"],
    "sglang": ["sglang/sglang_docs_production_metrics_llama31-8b.prom"],
    "tgi": ["tgi/tgi_metrics_trimmed.prom"],
    "llamacpp": ["llamacpp/metrics.txt"],
    "mindie": [
        "mindie/mindie_ms_metricsAggregate4SingleNodeOutput.prom",
        "mindie/mindie_ms_metricsPDNodeData_1.prom",
        "mindie/mindie_ms_metricsSingleNodeData_0.prom",
    ],
    "generic": [
        "triton/triton_t4_counters_gauges.prom",
        "vllm/vllm_datadog_fixture_opt-125m.prom",
        "tgi/tgi_metrics_trimmed.prom",
    ],
}
MAPS = {"vllm": vllm.VLLM, "sglang": sglang.SGLANG, "tgi": tgi.TGI, "llamacpp": llamacpp.LLAMACPP}
MAPS["mindie"] = mindie.MINDIE
IDENTITY = {
    "service_id": "svc-f",
    "service_name": "fuzz",
    "group_id": "g-f",
    "project_id": "p-f",
    "instance_name": "fuzz-0",
    "source": "fuzz-0-pod",
}
EXAMPLES = 300  # per target (engine x format); about 1-2 s each on a quiet machine
UP_LABELS = to_labels({**IDENTITY, METRIC_NAME: "up"})
INT64 = 2**63

HOSTILE_VALUES = [
    "Inf", "+Inf", "-Inf", "inf", "NaN", "nan", "1e308", "-1e308", "1e309", "1.7976931348623157e308",
    "9" * 400, "-" + "9" * 400, "4.9e-324", "-0", "0x10", "1_000", "abc", "", "-1", "\uff11",
]  # fmt: skip
HOSTILE_LE = [
    "abc", "NaN", "", "+inf", "Inf", "Infinity", "-Inf", "1e400", "-1", " 1", "1_0", "0x1p3", "1e308",
    "0.1", "0.10000000000001", "1", "1.0", "+Inf", "x" * 300, "é", "\\n", '\\"',
]  # fmt: skip
HOSTILE_TIMESTAMPS = ["Inf", "NaN", "-Inf", "1e400", "9" * 400, "-" + "9" * 30, "1.5", "1e300", "0", "-1"]
SAMPLE_LINE = re.compile(r"^(?P<head>[^\s{#][^\s{]*(?:\{.*\})?)\s+(?P<value>\S+)(?P<rest>.*)$")
LABEL_VALUE = re.compile(r'(?P<name>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def _openmetrics(text: str) -> str:
    """The same families as prometheus-client writes them in OpenMetrics (its strict parser reads them)."""

    class Families:
        def collect(self) -> Any:
            return text_string_to_metric_families(text)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families())  # type: ignore[arg-type]
    return generate_openmetrics(registry).decode()  # type: ignore[no-untyped-call]


BASES = {
    (engine, fmt): [
        (CAPTURED / path).read_text() if fmt == TEXT else _openmetrics((CAPTURED / path).read_text())
        for path in paths
    ]
    for engine, paths in SOURCES.items()
    for fmt in (TEXT, OPENMETRICS)
}


# --- body strategies --------------------------------------------------------------------------


def _histogram_names(engine: str) -> list[str]:
    engine_map = MAPS.get(engine)
    names = list(engine_map.histograms) if engine_map else []
    return names or ["some_latency_seconds"]


@st.composite
def generated_family(draw: st.DrawFn, engine: str) -> list[str]:
    """A histogram (or summary) of a name the adapter maps, with hostile bounds and values."""
    name = draw(st.sampled_from(_histogram_names(engine)))
    if draw(st.integers(0, 4)) == 0:
        quantiles = draw(st.lists(st.sampled_from(["0.5", "x", "NaN", "", "1e400", "-1"]), max_size=4))
        lines = [f"# TYPE {name} summary"]
        lines += [f'{name}{{quantile="{q}"}} {draw(st.sampled_from(HOSTILE_VALUES))}' for q in quantiles]
        return [*lines, f"{name}_sum 1", f"{name}_count 1"]
    bounds = draw(st.lists(st.sampled_from(HOSTILE_LE), min_size=0, max_size=6))
    if draw(st.booleans()):
        bounds.append("+Inf")
    values = st.one_of(st.sampled_from(HOSTILE_VALUES), st.integers(-5, 10**6).map(str))
    lines = [f"# TYPE {name} histogram"]
    lines += [f'{name}_bucket{{le="{le}",model_name="m"}} {draw(values)}' for le in bounds]
    if draw(st.booleans()):
        lines.append(f'{name}_bucket{{model_name="m"}} {draw(values)}')  # a bucket without le
    lines += [
        f'{name}_sum{{model_name="m"}} {draw(values)}',
        f'{name}_count{{model_name="m"}} {draw(values)}',
    ]
    return lines


def _set_value(line: str, value: str) -> str:
    m = SAMPLE_LINE.match(line)
    return f"{m['head']} {value}{m['rest']}" if m else line


def _set_label(line: str, index: int, value: str) -> str:
    hits = list(LABEL_VALUE.finditer(line))
    if not hits:
        return line
    hit = hits[index % len(hits)]
    return line[: hit.start("value")] + value + line[hit.end("value") :]


@st.composite
def mutated(draw: st.DrawFn, engine: str, fmt: str) -> bytes:
    """A captured exposition with a few hostile edits, in lines and then in bytes."""
    base = draw(st.sampled_from(BASES[(engine, fmt)]))
    lines = base.splitlines()
    eof = bool(lines) and lines[-1] == "# EOF"
    if eof:
        lines = lines[:-1]
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 12))
        at = draw(st.integers(0, max(len(lines) - 1, 0)))
        line = lines[at] if lines else ""
        if op == 0:
            lines[at : at + 1] = [_set_value(line, draw(st.sampled_from(HOSTILE_VALUES)))]
        elif op == 1:
            index, value = draw(st.integers(0, 5)), draw(st.sampled_from(HOSTILE_LE))
            lines[at : at + 1] = [_set_label(line, index, value)]
        elif op == 2:
            del lines[at : at + 1]
        elif op == 3:
            lines.insert(at, line)  # a duplicate series
        elif op == 4:
            size = draw(st.integers(1, 12_000))
            lines[at : at + 1] = [_set_label(line, draw(st.integers(0, 5)), "v" * size)]
        elif op == 5:
            lines = [x for x in lines if 'le="+Inf"' not in x]
        elif op == 6:
            lines.insert(at, "\n".join(draw(generated_family(engine))))
        elif op == 7:
            m = SAMPLE_LINE.match(line)
            if m:
                lines[at] = f"{m['head']} {m['value']} {draw(st.sampled_from(HOSTILE_TIMESTAMPS))}"
        elif op == 8:
            lines = draw(st.permutations(lines)) if len(lines) < 40 else lines[::-1]
        elif op == 9:
            text = draw(st.text(alphabet='abc_:{}="\\ #\t+-.0123456789eInfNa\n', max_size=80))
            lines.insert(at, text)
        elif op == 10:
            for name in _histogram_names(engine)[:1]:
                lines.insert(at, f'{name}_bucket{{le="0.5"}} {draw(st.sampled_from(HOSTILE_VALUES))}')
        elif op == 11:
            lines.insert(at, f"up {draw(st.sampled_from(HOSTILE_VALUES))}")  # the target's own `up`
        else:
            lines.insert(at, f'infersight_scrape_errors_total{{reason="parse"}} {at}')
    if eof and draw(st.integers(0, 9)) > 0:
        lines.append("# EOF")
    body = ("\n".join(lines) + "\n").encode()
    if draw(st.integers(0, 3)) == 0:  # byte-level damage: invalid UTF-8, NUL, CR, truncation
        cut = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x00", b"\r", b"\xed\xa0\x80", b"", b"\n\n"]))
        body = body[:cut] + junk + (body[cut:] if draw(st.booleans()) else b"")
    return body


def bodies(engine: str, fmt: str) -> st.SearchStrategy[bytes]:
    generated = st.lists(generated_family(engine), min_size=1, max_size=4).map(
        lambda families: (
            ("\n".join(line for f in families for line in f) + "\n").encode()
            + (b"# EOF\n" if fmt == OPENMETRICS else b"")
        )
    )
    return st.one_of(mutated(engine, fmt), mutated(engine, fmt), generated, st.binary(max_size=2048))


# --- the harness ------------------------------------------------------------------------------


class Harness:
    """One loopback server and one sidecar, kept across the examples of a target."""

    def __init__(self, engine: str, server_cls: Any, canned_cls: Any) -> None:
        self.canned_cls = canned_cls
        self.loop = asyncio.new_event_loop()
        self.server = server_cls({"/metrics": canned_cls(b"")})
        self.loop.run_until_complete(self.server.__aenter__())
        port = self.server.port
        target = TargetConfig(host="127.0.0.1", port=port, engine=engine, allowed_ports=(port,), **IDENTITY)
        self.sink = ListConsumer()
        self.exposition = Exposition(next_consumer=self.sink)
        self.now = 1_700_000_000.0
        self.sidecar = Sidecar(ScrapeConfig(), target, self.exposition, clock=lambda: self.now)
        self.outcomes: Counter[str] = Counter()

    def close(self) -> None:
        self.loop.run_until_complete(self.sidecar.stop())
        self.loop.run_until_complete(self.server.__aexit__())
        self.loop.close()

    def scrape(self, body: bytes, content_type: str) -> None:
        self.server.routes["/metrics"] = self.canned_cls(body, content_type=content_type)
        self.now += 10.0
        self.sink.batches.clear()
        before = dict(self.sidecar.errors_total)
        batch = self.loop.run_until_complete(self.sidecar.scrape_once())  # raising fails the test
        after = dict(self.sidecar.errors_total)
        assert self.sink.batches == [batch]
        self._check(batch, before, after)
        for render in (generate_latest, generate_openmetrics):  # the sidecar's own /metrics
            render(self.exposition.registry)  # type: ignore[operator]

    def _check(self, batch: list[Sample], before: dict[str, int], after: dict[str, int]) -> None:
        (up,) = [s.value for s in batch if s.labels == UP_LABELS]
        assert up in (0.0, 1.0)
        labels = [s.labels for s in batch]
        assert len(labels) == len(set(labels)), "a series twice in one batch"
        for s in batch:
            assert isinstance(s.ts_ms, int), s
            assert -INT64 <= s.ts_ms < INT64, s
            assert isinstance(s.value, float), s
        counted = {
            dict(s.labels)["reason"]: s.value
            for s in batch
            if s.name == "infersight_scrape_errors_total" and dict(s.labels).items() >= IDENTITY.items()
        }
        assert counted == {reason: float(after[reason]) for reason in ERROR_REASONS}
        assert all(after[r] >= before[r] for r in ERROR_REASONS)
        failed = [r for r in FAILURE_REASONS if after[r] != before[r]]
        partial = [r for r in PARTIAL_REASONS if after[r] != before[r]]
        assert all(after[r] - before[r] == 1 for r in failed + partial)
        if up == 0.0:
            assert len(failed) == 1, (failed, after)
            self.outcomes[f"up 0 ({failed[0]})"] += 1
        else:
            assert failed == [], failed
            self.outcomes["up 1" + "".join(f" +{r}" for r in partial)] += 1


@pytest.fixture
def harness(http_stub: Any, canned: Any) -> Iterator[Any]:
    made: list[Harness] = []
    logger.disable("collector")  # thousands of failed scrapes; their log lines are not under test

    def make(engine: str) -> Harness:
        made.append(Harness(engine, http_stub, canned))
        return made[-1]

    try:
        yield make
    finally:
        logger.enable("collector")
        for h in made:
            h.close()


ENGINES = list(SOURCES)


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
@pytest.mark.parametrize("engine", ENGINES)
def test_any_body_gives_up_and_a_counted_reason(harness: Any, engine: str, fmt: str) -> None:
    h: Harness = harness(engine)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(body=bodies(engine, fmt))
    def scrape(body: bytes) -> None:
        h.scrape(body, fmt)

    scrape()
    total = sum(h.outcomes.values())
    print(f"\n{engine} {fmt.split(';')[0]}: {total} scrapes: {dict(sorted(h.outcomes.items()))}")  # noqa: T201
    # not vacuous: both kinds of outcome were reached (the examples are derandomized, so fixed)
    assert any(k.startswith("up 1") for k in h.outcomes), h.outcomes
    assert any(k.startswith("up 0 (parse)") for k in h.outcomes), h.outcomes


def test_an_exception_anywhere_still_gives_up_zero(harness: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (any exception type) in fetching, parsing, adapting or labelling: up 0, reason internal."""
    import collector.sidecar as sidecar_module

    h: Harness = harness("vllm")
    body = (CAPTURED / SOURCES["vllm"][0]).read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    for name in ("parse_scrape", "to_samples"):
        with monkeypatch.context() as patch:
            patch.setattr(sidecar_module, name, boom)
            h.scrape(body, TEXT)
    assert h.outcomes == {"up 0 (internal)": 2}
    h.scrape(body, TEXT)  # and the next scrape is fine again
    assert h.outcomes["up 1"] == 1
    assert h.sidecar.errors_total["internal"] == 2


def test_an_adapter_that_raises_costs_only_the_derived_series(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collector.engines as engines

    def boom(samples: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setitem(engines.CHECKED_ADAPTERS, "vllm", boom)
    h: Harness = harness("vllm")
    body = (CAPTURED / SOURCES["vllm"][0]).read_bytes()
    h.scrape(body, TEXT)
    assert h.outcomes == {"up 1 +adapter": 1}
    (batch,) = h.sink.batches
    names = {s.name for s in batch}
    assert "vllm:time_to_first_token_seconds_sum" in names  # the target's own series are kept
    assert not any(name.startswith("infer_service_") for name in names)
