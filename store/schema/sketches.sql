-- Window sketches: one row per (series, 10 s window, flush) holding an exponential histogram
-- (OTel / Prometheus native bucket scheme, fixed scale) as sparse parallel arrays that
-- sumMap(positive_keys, positive_counts) adds, so ClickHouse merges pods, deployments, windows and
-- periods itself. No Map type: ClickHouse 18.16 lacks it. Plain MergeTree, not Replacing: two rows
-- for one window (a late value, a sidecar restart) are both real data and must add up.
-- Daily partitions so that retention drops whole partitions.
CREATE TABLE IF NOT EXISTS {db}.sketches
(
    metric_name String,
    service_id String,
    group_id String,
    source String,
    project_id String,
    service_name String,
    instance_name String,
    role String,
    fingerprint UInt64,
    label_names Array(String),
    label_values Array(String),
    window_start_ms Int64,
    width_s UInt32,
    scale Int8,
    count UInt64,
    sum Float64,
    min Float64,
    max Float64,
    zero_count UInt64,
    positive_keys Array(Int32),
    positive_counts Array(UInt64),
    negative_keys Array(Int32),
    negative_counts Array(UInt64)
)
ENGINE = MergeTree()
PARTITION BY toDate(toDateTime(intDiv(window_start_ms, 1000)))
ORDER BY (metric_name, service_id, group_id, source, window_start_ms)
