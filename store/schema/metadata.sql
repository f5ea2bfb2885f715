-- Metric metadata (TYPE/HELP/UNIT) per project, target and metric, as the sidecars shipped it.
-- The newest row per key wins (ReplacingMergeTree on `updated_ms`; reads take argMax, so they are
-- right before merges too). Monthly partitions: a live target's sidecar resends its metadata every
-- ten minutes, so retention may drop whole months as it does for the samples.
CREATE TABLE IF NOT EXISTS {db}.metadata
(
    day Date,
    updated_ms Int64,
    project_id String,
    service_id String,
    instance_name String,
    source String,
    metric String,
    type String,
    help String,
    unit String
)
ENGINE = ReplacingMergeTree(updated_ms)
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, metric, service_id, instance_name, source)
