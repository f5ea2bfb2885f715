-- One row per (series, day) it was seen on: resolves label matchers to fingerprints and bounds
-- `series`/`labels` queries in time. Labels are parallel arrays (no Map: ClickHouse 18.16 lacks it).
CREATE TABLE IF NOT EXISTS {db}.series
(
    day Date,
    metric_name {name_type},
    fingerprint UInt64,
    label_names Array(String),
    label_values Array(String)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (metric_name, fingerprint, day)
