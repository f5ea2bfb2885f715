"""The store: ClickHouse schema, backends (embedded chDB, a server or cluster), batched writes, reads."""
