-- Progress of the rollup job: per width the end of the last bucket computed ("done_<width>"), and
-- the server time up to which late-data marks were handled ("dirty_seen_s"). Newest row wins.
CREATE TABLE IF NOT EXISTS {db}.rollup_state
(
    name String,
    value Int64,
    at_ms Int64
)
ENGINE = ReplacingMergeTree(at_ms)
ORDER BY name
