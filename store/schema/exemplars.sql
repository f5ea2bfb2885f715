-- Exemplars: a few requests per histogram bucket series (the ingress proxy keeps the latest one per
-- bucket and flush), each with its own labels (request_id, trace_id) as parallel arrays. Keyed by
-- the bucket series' fingerprint, the same as its samples, so `query_exemplars` finds them through
-- the series a selector matches (and the caller's project scope). ReplacingMergeTree on (series, ts):
-- a batch sent twice collapses. Daily partitions: retention drops them with the metrics.
CREATE TABLE IF NOT EXISTS {db}.exemplars
(
    metric_name {name_type},
    fingerprint UInt64,
    ts_ms Int64{ts_codec},
    value Float64,
    label_names Array(String),
    label_values Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toDate(toDateTime(intDiv(ts_ms, 1000)))
ORDER BY (metric_name, fingerprint, ts_ms)
