-- Late data: a writer that stored samples older than the rollup job's horizon records their time
-- span here (at_s: the server's clock at insert), so the job recomputes the rollups they fall in.
CREATE TABLE IF NOT EXISTS {db}.rollup_dirty
(
    from_ms Int64,
    to_ms Int64,
    at_s UInt32
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(toDate(toDateTime(at_s)))
ORDER BY at_s
