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

-- Rollups: per series and bucket (end - width, end] of 1 min, 5 min, 15 min or 1 h, the aggregates
-- every "over time" PromQL function composes exactly (count, sum, min, max, first/last two points,
-- counter-reset corrections, changes), so a 15-day view reads ~6-360x fewer rows than raw samples.
-- Buckets are closed on the right like Prometheus' windows. Computed by store/rollups.py from
-- deduplicated samples, stale markers left out (range functions never see them); a bucket recomputed
-- after late data replaces the older row: ReplacingMergeTree(version), and reads keep the newest.
CREATE TABLE IF NOT EXISTS infersight.rollups_local ON CLUSTER infersight
(
    metric_name String,
    width_s UInt32,
    fingerprint UInt64,
    bucket_ms Int64,
    version Int64,
    count UInt32,
    sum Float64,
    min Float64,
    max Float64,
    nonfinite UInt32,
    first_ts Int64,
    first_value Float64,
    last_ts Int64,
    last_value Float64,
    prev_ts Int64,
    prev_value Float64,
    correction Float64,
    resets UInt32,
    changes UInt32
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/infersight/rollups_local', '{replica}', version)
PARTITION BY toDate(toDateTime(intDiv(bucket_ms - 1, 1000)))
ORDER BY (metric_name, width_s, fingerprint, bucket_ms);

CREATE TABLE IF NOT EXISTS infersight.rollups ON CLUSTER infersight AS infersight.rollups_local
ENGINE = Distributed(infersight, infersight, rollups_local, fingerprint);

-- Progress of the rollup job: per width the end of the last bucket computed ("done_<width>"), and
-- the server time up to which late-data marks were handled ("dirty_seen_s"). Newest row wins.
CREATE TABLE IF NOT EXISTS infersight.rollup_state_local ON CLUSTER infersight
(
    name String,
    value Int64,
    at_ms Int64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/infersight/rollup_state_local', '{replica}', at_ms)
ORDER BY name;

CREATE TABLE IF NOT EXISTS infersight.rollup_state ON CLUSTER infersight AS infersight.rollup_state_local
ENGINE = Distributed(infersight, infersight, rollup_state_local, rand());

-- Late data: a writer that stored samples older than the rollup job's horizon records their time
-- span here (at_s: the server's clock at insert), so the job recomputes the rollups they fall in.
CREATE TABLE IF NOT EXISTS infersight.rollup_dirty_local ON CLUSTER infersight
(
    from_ms Int64,
    to_ms Int64,
    at_s UInt32
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/infersight/rollup_dirty_local', '{replica}')
PARTITION BY toYYYYMM(toDate(toDateTime(at_s)))
ORDER BY at_s;

CREATE TABLE IF NOT EXISTS infersight.rollup_dirty ON CLUSTER infersight AS infersight.rollup_dirty_local
ENGINE = Distributed(infersight, infersight, rollup_dirty_local, rand());
