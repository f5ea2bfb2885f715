"""The query side: the PromQL engine and the HTTP APIs over the store."""
