"""The store: ClickHouse schema, backends (embedded chDB, server later), batched writes and reads."""
