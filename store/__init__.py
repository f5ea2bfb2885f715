"""The store: ClickHouse schema, backends (embedded chDB, a ClickHouse server or cluster), batched writes and reads."""
