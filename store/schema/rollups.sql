-- Rollups: per series and bucket (end - width, end] of 1 min, 5 min, 15 min or 1 h, the aggregates
-- every "over time" PromQL function composes exactly (count, sum, min, max, first/last two points,
-- counter-reset corrections, changes), so a 15-day view reads ~6-360x fewer rows than raw samples.
-- Buckets are closed on the right like Prometheus' windows. Computed by store/rollups.py from
-- deduplicated samples, stale markers left out (range functions never see them); a bucket recomputed
-- after late data replaces the older row: ReplacingMergeTree(version), and reads keep the newest.
CREATE TABLE IF NOT EXISTS {db}.rollups
(
    metric_name {name_type},
    width_s UInt32,
    fingerprint UInt64{fp_codec},
    bucket_ms Int64{ts_codec},
    version Int64,
    count UInt32,
    sum Float64{value_codec},
    min Float64{value_codec},
    max Float64{value_codec},
    nonfinite UInt32,
    first_ts Int64{ts_codec},
    first_value Float64{value_codec},
    last_ts Int64{ts_codec},
    last_value Float64{value_codec},
    prev_ts Int64{ts_codec},
    prev_value Float64{value_codec},
    correction Float64{value_codec},
    resets UInt32,
    changes UInt32
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toDate(toDateTime(intDiv(bucket_ms - 1, 1000)))
ORDER BY (metric_name, width_s, fingerprint, bucket_ms)
