"""The server's own bookkeeping as series in its store, so dashboards and alert rules see it.

What a user must be able to alert on without reading logs: samples the writer refused (bad labels,
cardinality limits: ``store.limits``), batches the disk buffer dropped while the store was down, and
what the server's ingest log took, stored, refused or still holds.

- ``infersight_ingest_dropped_samples_total{reason}``: ``SampleWriter.guard.dropped``;
- ``infersight_export_samples_total{outcome}`` (exported, dropped_buffer_full, rejected) and
  ``infersight_export_pending_samples``: the disk buffer's ``BufferedExporter.counts()``;
- ``infersight_ingest_log_samples_total{outcome}`` (accepted, stored, rejected, refused_log_full)
  and ``infersight_ingest_log_pending_samples``: the server's ``IngestLog.counts()``;
- ``infersight_ingest_refused_requests_total{route, reason}`` and
  ``infersight_ingest_refused_samples_total{route, reason}``: requests refused at the door of remote
  write and HTTP ingest (``store.admission``: bad labels, timestamps the store cannot hold, over the
  per-request caps), with route ``remote_write`` or ``ingest``;
- ``infersight_auth_refused_requests_total{reason}`` (unauthorized: 401, too_many_failures: 429,
  store_unavailable: 503) and ``infersight_auth_key_store_lookups_total``: API keys looked up in the
  store (cache misses); with auth on. All of these from ``query.api.server_counts``.

Counters restart at zero with the process, which ``rate``/``increase`` read as a counter reset.
"""

from __future__ import annotations

from collections.abc import Mapping

from model.labels import METRIC_NAME, to_labels
from model.series import Sample
from query.api.server_counts import ApiCounts
from store.limits import counter_samples


def _outcomes(name: str, counts: Mapping[str, int], ts_ms: int) -> list[Sample]:
    """``{name}_samples_total{outcome}`` for the counts, ``{name}_pending_samples`` for ``pending``."""
    totals = {k: v for k, v in counts.items() if k != "pending"}
    out = counter_samples(f"{name}_samples_total", totals, ts_ms, key="outcome")
    if "pending" in counts:
        pending = to_labels({METRIC_NAME: f"{name}_pending_samples"})
        out.append(Sample(pending, ts_ms, float(counts["pending"])))
    return out


def _by_route(name: str, counts: Mapping[tuple[str, str], int], ts_ms: int) -> list[Sample]:
    return [
        Sample(to_labels({METRIC_NAME: name, "route": route, "reason": reason}), ts_ms, float(n))
        for (route, reason), n in sorted(counts.items())
    ]


def _api(counts: ApiCounts, ts_ms: int) -> list[Sample]:
    out = _by_route("infersight_ingest_refused_requests_total", counts.refused_requests, ts_ms)
    out += _by_route("infersight_ingest_refused_samples_total", counts.refused_samples, ts_ms)
    if counts.auth:
        refused = {k: v for k, v in counts.auth.items() if k != "store_lookups"}
        out += counter_samples("infersight_auth_refused_requests_total", refused, ts_ms)
        lookups = to_labels({METRIC_NAME: "infersight_auth_key_store_lookups_total"})
        out.append(Sample(lookups, ts_ms, float(counts.auth.get("store_lookups", 0))))
    return out


def self_samples(
    ts_ms: int,
    dropped: Mapping[str, int],
    export_counts: Mapping[str, int] | None = None,
    ingest_log_counts: Mapping[str, int] | None = None,
    api_counts: ApiCounts | None = None,
) -> list[Sample]:
    """One sample per series above, at ``ts_ms``; reasons only once one was counted (the auth
    outcomes always, once auth is on, so a rate over them starts at zero)."""
    out = counter_samples("infersight_ingest_dropped_samples_total", dropped, ts_ms)
    if export_counts is not None:
        out += _outcomes("infersight_export", export_counts, ts_ms)
    if ingest_log_counts is not None:
        out += _outcomes("infersight_ingest_log", ingest_log_counts, ts_ms)
    if api_counts is not None:
        out += _api(api_counts, ts_ms)
    return out
