-- Points, one row each. ReplacingMergeTree on (metric, fingerprint, ts) makes a replayed batch
-- collapse into the original rows; reads also keep one point per timestamp until merges catch up.
-- Daily partitions so that retention drops whole partitions.
CREATE TABLE IF NOT EXISTS {db}.samples
(
    metric_name String,
    fingerprint UInt64,
    ts_ms Int64,
    value Float64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(toDateTime(intDiv(ts_ms, 1000)))
ORDER BY (metric_name, fingerprint, ts_ms)
