"""``infersight query``: times and steps as a user types them, the API's answers as a terminal shows
them (fuzzed: any well-formed answer prints, never raises), and a real server asked through the CLI."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infersight.query_command import build_request, parse_time, render
from tests.infersight.cli_processes import Process, free_port, run_cli

NOW = 1_764_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("now", NOW),
        ("now-1h", NOW - 3600),
        ("-15m", NOW - 900),
        ("now+30s", NOW + 30),
        ("2025-11-24T16:00:00Z", 1_764_000_000.0),
        ("2025-11-24T17:00:00+01:00", 1_764_000_000.0),
    ],
)
def test_times(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "now-", "now-1x", "", "2025-13-01"])
def test_bad_times_are_named(text: str) -> None:
    with pytest.raises(ValueError, match=r"time|duration|unknown|invalid|empty|not"):
        parse_time(text, NOW)


def test_instant_and_range_requests() -> None:
    assert not build_request("up", None, None, None, None, NOW).is_range
    assert build_request("up", "now-5m", None, None, None, NOW).time == NOW - 300
    ranged = build_request("up", None, "now-2h", None, None, NOW)
    assert (ranged.start, ranged.end, ranged.step) == (NOW - 7200, NOW, 60.0)  # ~120 points
    only_step = build_request("up", None, None, None, "30s", NOW)
    assert (only_step.start, only_step.end, only_step.step) == (NOW - 3600, NOW, 30.0)
    with pytest.raises(ValueError, match="--time"):
        build_request("up", "now", "now-1h", None, None, NOW)
    with pytest.raises(ValueError, match="after"):
        build_request("up", None, "now", "now-1h", None, NOW)
    with pytest.raises(ValueError, match="step"):
        build_request("up", None, "now-1h", None, "0", NOW)


def test_instant_vector_is_a_table() -> None:
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "up", "job": "b", "instance": "x"}, "value": [NOW, "0"]},
            {"metric": {"__name__": "up", "job": "a"}, "value": [NOW, "1"]},
        ],
    }
    lines = render(data).splitlines()
    assert lines[0].split() == ["metric", "instance", "job", "value"]
    assert lines[2].split() == ["up", "a", "1"]
    assert lines[3].split() == ["up", "x", "b", "0"]


def test_range_is_one_line_per_series() -> None:
    data = {
        "resultType": "matrix",
        "result": [
            {"metric": {"__name__": "rate", "pod": "p1"}, "values": [[NOW + i, str(i)] for i in range(5)]},
            {"metric": {"pod": "p0"}, "values": [[NOW, "NaN"]]},
        ],
    }
    lines = render(data).splitlines()
    assert len(lines) == 2
    assert lines[0] == 'rate{pod="p1"}  5 points  min 0  max 4  last 4  ▁▃▅▇█'
    assert lines[1].startswith('{pod="p0"}  1 points  no numbers')


def test_scalar_string_and_empty() -> None:
    assert render({"resultType": "scalar", "result": [NOW, "2"]}) == f"scalar  2  @ {NOW}"
    assert render({"resultType": "vector", "result": []}) == "no data (vector empty)"


_labels = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=4)
_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str), st.sampled_from(["NaN", "+Inf", "-Inf", "x"])
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries({"metric": _labels, "value": st.tuples(st.just(NOW), _value)}), max_size=6
    ),
    st.lists(
        st.fixed_dictionaries(
            {"metric": _labels, "values": st.lists(st.tuples(st.just(NOW), _value), max_size=200)}
        ),
        max_size=4,
    ),
)
def test_any_answer_prints(vector: list, matrix: list) -> None:
    assert isinstance(render({"resultType": "vector", "result": vector}), str)
    out = render({"resultType": "matrix", "result": matrix})
    assert len(out.splitlines()) == max(1, len(matrix))


@pytest.mark.integration
def test_query_a_running_server(tmp_path: Path) -> None:
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    proc = Process(
        [
            "server",
            "--data",
            str(tmp_path / "data"),
            "--listen",
            f"127.0.0.1:{port}",
            "--set",
            "scrape.interval=1s",
        ],
        tmp_path,
        "server",
    )
    try:
        proc.wait_http(f"{server}/-/ready")
        query = "infersight_ingest_log_samples_total"  # the server's own series, written every interval
        deadline = time.monotonic() + 60
        while True:
            instant = run_cli(["query", query, "--server", server], tmp_path)
            assert instant.returncode == 0, instant.stderr
            if "no data" not in instant.stdout or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert instant.stdout.splitlines()[0].split()[0] == "metric", instant.stdout
        assert query in instant.stdout
        ranged = run_cli(["query", query, "--server", server, "--start", "now-5m", "--step", "1s"], tmp_path)
        assert ranged.returncode == 0, ranged.stderr
        assert ranged.stdout.startswith(f"{query}{{"), ranged.stdout
        assert " points  min " in ranged.stdout
        bad = run_cli(["query", "sum(", "--server", server], tmp_path)
        assert bad.returncode == 1
        assert bad.stderr.startswith("infersight: query failed: bad_data:"), bad.stderr
    finally:
        assert proc.stop() == 0, proc.output()
