-- API keys: only a hash of each secret is kept. A key belongs to one project (tenant) and carries
-- permissions; revoking writes a newer version of the row (ReplacingMergeTree on `version`).
CREATE TABLE IF NOT EXISTS {db}.api_keys
(
    key_id String,
    key_hash String,
    name String,
    project_id String,
    permissions Array(String),
    created_ms Int64,
    revoked UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY key_id
