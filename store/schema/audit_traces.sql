-- CTS-style audit traces, hash-chained in `seq` order: each row's `hash` commits to its content
-- and to the previous row's hash (`prev_hash`), so a changed, removed, inserted or reordered row
-- breaks the chain. Monthly partitions so retention drops whole partitions; anchors keep later
-- ranges verifiable after older partitions are gone.
CREATE TABLE IF NOT EXISTS {db}.audit_traces
(
    seq UInt64,
    day Date,
    time_ms Int64,
    record_time_ms Int64,
    trace_id String,
    trace_name String,
    trace_rating String,
    trace_type String,
    service_type String,
    resource_type String,
    resource_id String,
    resource_name String,
    user_id String,
    user_name String,
    domain_id String,
    domain_name String,
    source_ip String,
    request String,
    response String,
    code String,
    message String,
    api_version String,
    project_id String,
    request_id String,
    prev_hash String,
    hash String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY seq
