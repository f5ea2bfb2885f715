-- The sketches table as releases made it before it had row_id: upgraded data folders hold this one.
-- Window sketches: one row per (series, 10 s window, flush) holding an exponential histogram
-- (OTel / Prometheus native bucket scheme, fixed scale) as sparse parallel arrays that
-- sumMap(positive_keys, positive_counts) adds, so ClickHouse merges pods, deployments, windows and
-- periods itself. No Map type: ClickHouse 18.16 lacks it. Plain MergeTree, not Replacing: two rows
-- for one window (a late value, a sidecar restart) are both real data and must add up.
-- Daily partitions so that retention drops whole partitions. Types and codecs in braces come from
-- the server's features (store/features.py): plain on 18.16, LowCardinality and ZSTD on newer.
CREATE TABLE IF NOT EXISTS {db}.sketches
(
    metric_name {name_type},
    service_id {name_type},
    group_id {name_type},
    source {name_type},
    project_id {name_type},
    service_name {name_type},
    instance_name {name_type},
    role {name_type},
    fingerprint UInt64,
    label_names Array(String),
    label_values Array(String),
    window_start_ms Int64{ts_codec},
    width_s UInt32,
    scale Int8,
    count UInt64,
    sum Float64,
    min Float64,
    max Float64,
    zero_count UInt64,
    positive_keys Array(Int32){value_codec},
    positive_counts Array(UInt64){value_codec},
    negative_keys Array(Int32){value_codec},
    negative_counts Array(UInt64){value_codec}
)
ENGINE = MergeTree()
PARTITION BY toDate(toDateTime(intDiv(window_start_ms, 1000)))
ORDER BY (metric_name, service_id, group_id, source, window_start_ms)
