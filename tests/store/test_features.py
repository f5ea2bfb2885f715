"""Features follow the server version: 18.16 gets the portable schema, new servers codecs and friends."""

from __future__ import annotations

import pytest

from store.features import Features
from store.open import Store
from store.schema import render_schema


def test_18_16_has_none_of_the_newer_features() -> None:
    f = Features.from_version("18.16.1")
    assert (f.low_cardinality, f.codecs, f.ttl, f.async_insert, f.dedup_token) == (False,) * 5
    samples = next(s for s in render_schema("db", f) if "db.samples" in s)
    assert "CODEC" not in samples
    assert "metric_name String" in samples


def test_current_release_has_them_all() -> None:
    f = Features.from_version("26.9.1.1")
    assert f.version == (26, 9, 1)
    assert all((f.low_cardinality, f.codecs, f.ttl, f.async_insert, f.dedup_token))
    samples = next(s for s in render_schema("db", f) if "db.samples" in s)
    assert "value Float64 CODEC(Delta, ZSTD(1))" in samples


@pytest.mark.parametrize("text", ["", "abc", "v18"])
def test_unparseable_version(text: str) -> None:
    with pytest.raises(ValueError, match="version"):
        Features.from_version(text)


def test_probe_reads_the_connected_server(store: Store) -> None:
    assert store.features is not None
    expected = (18, 16) if store.backend.__class__.__name__ == "NativeBackend" else (26,)
    assert store.features.version[: len(expected)] == expected
    types = store.backend.query(
        "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'samples'",
        {"db": store.backend.database},
    ).to_pylist()
    name_type = next(r["type"] for r in types if r["name"] == "metric_name")
    assert name_type == ("LowCardinality(String)" if store.features.low_cardinality else "String")
