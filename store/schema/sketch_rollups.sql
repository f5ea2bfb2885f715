-- Sketch rollups: the window sketches of one series merged per bucket [start, start + width) of
-- 1 min, 5 min, 15 min or 1 h (sumMap of the bucket counts, as reads merge them), so a 15-day TPxx
-- by hour reads 360x fewer rows than 10 s windows. Computed by store/rollups.py; a bucket recomputed
-- after late rows replaces the older one (ReplacingMergeTree(version), read with FINAL).
-- Columns as in sketches.sql; width_s is the bucket's width, window_start_ms its start.
CREATE TABLE IF NOT EXISTS {db}.sketch_rollups
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
    version Int64,
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
ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(toDateTime(intDiv(window_start_ms, 1000)))
ORDER BY (metric_name, width_s, service_id, group_id, source, fingerprint, scale, window_start_ms)
