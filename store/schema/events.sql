-- Service and pod events, one row per occurrence; listing folds identical ones (the guide's
-- "Occurrences"). Daily partitions per kind, so retention drops whole partitions of one kind.
CREATE TABLE IF NOT EXISTS {db}.events
(
    day Date,
    time_ms Int64,
    event_id String,
    kind String,
    type String,
    reason String,
    message String,
    source String,
    project_id String,
    service_id String,
    service_name String,
    group_id String,
    instance_name String,
    unit String,
    pod String
)
ENGINE = ReplacingMergeTree()
PARTITION BY (kind, toYYYYMMDD(day))
ORDER BY (kind, project_id, service_id, time_ms, event_id)
