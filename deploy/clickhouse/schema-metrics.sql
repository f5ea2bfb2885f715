-- One row per (series, day) it was seen on: resolves label matchers to fingerprints and bounds
-- `series`/`labels` queries in time. Labels are parallel arrays (no Map: ClickHouse 18.16 lacks it).
CREATE TABLE IF NOT EXISTS infersight.series_local ON CLUSTER infersight
(
    day Date,
    metric_name String,
    fingerprint UInt64,
    label_names Array(String),
    label_values Array(String)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/infersight/series_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (metric_name, fingerprint, day);

CREATE TABLE IF NOT EXISTS infersight.series ON CLUSTER infersight AS infersight.series_local
ENGINE = Distributed(infersight, infersight, series_local, fingerprint);

-- Points, one row each. ReplacingMergeTree on (metric, fingerprint, ts) makes a replayed batch
-- collapse into the original rows; reads also keep one point per timestamp until merges catch up.
-- Daily partitions so that retention drops whole partitions. Types and codecs in braces are
-- filled from the server's features (store/features.py): plain on 18.16, compressed on 20.1+.
CREATE TABLE IF NOT EXISTS infersight.samples_local ON CLUSTER infersight
(
    metric_name String,
    fingerprint UInt64,
    ts_ms Int64,
    value Float64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/infersight/samples_local', '{replica}')
PARTITION BY toDate(toDateTime(intDiv(ts_ms, 1000)))
ORDER BY (metric_name, fingerprint, ts_ms);

CREATE TABLE IF NOT EXISTS infersight.samples ON CLUSTER infersight AS infersight.samples_local
ENGINE = Distributed(infersight, infersight, samples_local, fingerprint);
