-- Points, one row each. ReplacingMergeTree on (metric, fingerprint, ts) makes a replayed batch
-- collapse into the original rows; reads also keep one point per timestamp until merges catch up.
-- Daily partitions so that retention drops whole partitions. Types and codecs in braces are
-- filled from the server's features (store/features.py): plain on 18.16, compressed on 20.1+.
CREATE TABLE IF NOT EXISTS {db}.samples
(
    metric_name {name_type},
    fingerprint UInt64{fp_codec},
    ts_ms Int64{ts_codec},
    value Float64{sample_value_codec}
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(toDateTime(intDiv(ts_ms, 1000)))
ORDER BY (metric_name, fingerprint, ts_ms)
