-- Every Nth chain hash, so a range can be verified from the anchor before it rather than from the
-- first record ever written (which retention may have dropped).
CREATE TABLE IF NOT EXISTS {db}.audit_anchors
(
    seq UInt64,
    hash String,
    record_time_ms Int64
)
ENGINE = MergeTree()
ORDER BY seq
