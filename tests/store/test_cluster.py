"""Cluster DDL: Replicated local tables and Distributed tables, as the text checked in deploy/clickhouse/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from store.cluster import render_cluster_schema, render_cluster_table
from store.features import Features
from store.schema import TABLES

GOLDEN = Path(__file__).resolve().parents[2] / "deploy" / "clickhouse" / "schema-metrics.sql"


def _metrics_ddl() -> str:
    """What ``python -m store.cluster --cluster infersight --tables <the metrics tables>`` writes."""
    statements = [
        s
        for t in ("series", "samples", "rollups", "rollup_state", "rollup_dirty")
        for s in render_cluster_table(t, "infersight", "infersight")
    ]
    return ";\n\n".join(s.strip() for s in statements) + ";\n"


def test_metrics_tables_match_checked_in_text() -> None:
    assert _metrics_ddl() == GOLDEN.read_text(), (
        "regenerate: python -m store.cluster --cluster infersight "
        "--tables series,samples,rollups,rollup_state,rollup_dirty > deploy/clickhouse/schema-metrics.sql"
    )


def test_every_table_gets_a_replicated_local_and_a_distributed_table() -> None:
    statements = render_cluster_schema("db", "c1")
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS db ON CLUSTER c1"
    for table in TABLES:
        local = next(s for s in statements if f"db.{table}_local ON CLUSTER c1\n" in s)
        assert re.search(
            rf"ENGINE = Replicated\w*MergeTree\("
            rf"'/clickhouse/tables/{{shard}}/db/{table}_local', '{{replica}}'",
            local,
        )
        distributed = next(s for s in statements if f"db.{table} ON CLUSTER c1 AS db.{table}_local" in s)
        assert f"ENGINE = Distributed(c1, db, {table}_local, " in distributed


def test_series_samples_and_rollups_shard_by_fingerprint() -> None:
    for table in ("series", "samples", "rollups"):
        assert render_cluster_table(table, "db", "c")[1].endswith(
            f"Distributed(c, db, {table}_local, fingerprint)"
        )


def test_new_servers_get_codecs_in_cluster_mode_too() -> None:
    local = render_cluster_table("samples", "db", "c", Features.from_version("24.8.1"))[0]
    assert "metric_name LowCardinality(String)" in local
    assert "ts_ms Int64 CODEC(DoubleDelta, ZSTD(1))" in local


@pytest.mark.parametrize(("database", "cluster"), [("db;drop", "c"), ("db", "c x"), ("", "c")])
def test_names_must_be_identifiers(database: str, cluster: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        render_cluster_schema(database, cluster)


def test_example_cluster_config_is_2_shards_by_2_replicas_with_matching_macros() -> None:
    import xml.etree.ElementTree as ET

    folder = GOLDEN.parent
    cluster = ET.parse(folder / "config.d" / "cluster.xml").getroot().find("remote_servers/infersight")
    assert cluster is not None
    shards = [[r.findtext("host") for r in s.findall("replica")] for s in cluster.findall("shard")]
    assert shards == [["ch-s1-r1", "ch-s1-r2"], ["ch-s2-r1", "ch-s2-r2"]]
    for number, hosts in enumerate(shards, start=1):
        for host in hosts:
            macros = ET.parse(folder / "nodes" / f"{host}.xml").getroot().find("macros")
            assert macros is not None
            assert (macros.findtext("shard"), macros.findtext("replica")) == (str(number), host)
    keeper = ET.parse(folder / "keeper.xml").getroot()
    assert len(keeper.findall("keeper_server/raft_configuration/server")) == 3
