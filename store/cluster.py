"""Cluster mode DDL: ``Replicated*MergeTree`` local tables on every node, ``Distributed`` tables over them.

Writes and reads keep naming ``{db}.{table}``: that is the Distributed table, and the rows live in
``{db}.{table}_local``. Rows of one series go to one shard (sharding key ``fingerprint``), so the
ReplacingMergeTree key (metric, fingerprint, ts) still collapses replays, and replicas of a shard
also drop a repeated identical insert block (ClickHouse's replicated block deduplication).

``python -m store.cluster --cluster infersight`` prints the statements (``deploy/clickhouse/``).
"""

from __future__ import annotations

import argparse
import re
import sys

from store.features import Features
from store.schema import PORTABLE, TABLES, check_identifier, render_table

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)")
_ENGINE = re.compile(r"ENGINE = (\w*)MergeTree\(([^)]*)\)")
# Tables without a fingerprint spread evenly; a series' rows always land on one shard.
_SHARDING: dict[str, str] = {
    "samples": "fingerprint",
    "series": "fingerprint",
    "sketches": "fingerprint",
    "rollups": "fingerprint",
    "sketch_rollups": "fingerprint",
    "exemplars": "fingerprint",
}
ZOOKEEPER_PATH = "/clickhouse/tables/{shard}/%s/%s"


def local_name(table: str) -> str:
    return f"{table}_local"


def _local_table(sql: str, database: str, table: str, cluster: str) -> str:
    created = _CREATE.sub(
        f"CREATE TABLE IF NOT EXISTS {database}.{local_name(table)} ON CLUSTER {cluster}", sql
    )

    def replicated(match: re.Match[str]) -> str:
        path = ZOOKEEPER_PATH % (database, local_name(table))
        args = ", ".join(a for a in (f"'{path}'", "'{replica}'", match[2].strip()) if a)
        return f"ENGINE = Replicated{match[1]}MergeTree({args})"

    out, count = _ENGINE.subn(replicated, created)
    if count != 1:
        raise ValueError(f"{table}.sql: expected one *MergeTree engine, found {count}")
    return out


def _distributed_table(database: str, table: str, cluster: str) -> str:
    key = _SHARDING.get(table, "rand()")
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} "
        f"AS {database}.{local_name(table)}\n"
        f"ENGINE = Distributed({cluster}, {database}, {local_name(table)}, {key})"
    )


def render_cluster_table(table: str, database: str, cluster: str, features: Features = PORTABLE) -> list[str]:
    """The local and the Distributed statement of one table."""
    sql = render_table(table, database, features)
    return [_local_table(sql, database, table, cluster), _distributed_table(database, table, cluster)]


def render_cluster_schema(database: str, cluster: str, features: Features = PORTABLE) -> list[str]:
    """Every statement, in order, to create the schema on a cluster defined in the servers' config."""
    check_identifier("database", database)
    check_identifier("cluster", cluster)
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"]
    for table in TABLES:
        statements.extend(render_cluster_table(table, database, cluster, features))
    return statements


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--database", default="infersight")
    parser.add_argument("--version", default="18.16.1", help="server version whose features to use")
    parser.add_argument("--tables", help="comma-separated tables (default: the whole schema)")
    args = parser.parse_args(argv)
    features = Features.from_version(args.version)
    if args.tables:
        tables = args.tables.split(",")
        statements = [
            s for t in tables for s in render_cluster_table(t, args.database, args.cluster, features)
        ]
    else:
        statements = render_cluster_schema(args.database, args.cluster, features)
    sys.stdout.write(";\n\n".join(s.strip() for s in statements) + ";\n")


if __name__ == "__main__":
    main()
