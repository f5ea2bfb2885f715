"""The server's own bookkeeping as series in its store, so dashboards and alert rules see it.

What a user must be able to alert on without reading logs: samples the writer refused (bad labels,
cardinality limits: ``store.limits``), batches the disk buffer dropped while the store was down, and
what the server's ingest log took, stored, refused or still holds.

- ``infersight_ingest_dropped_samples_total{reason}``: ``SampleWriter.guard.dropped``;
- ``infersight_export_samples_total{outcome}`` (exported, dropped_buffer_full, rejected) and
  ``infersight_export_pending_samples``: the disk buffer's ``BufferedExporter.counts()``;
- ``infersight_ingest_log_samples_total{outcome}`` (accepted, stored, rejected, refused_log_full)
  and ``infersight_ingest_log_pending_samples``: the server's ``IngestLog.counts()``.

Counters restart at zero with the process, which ``rate``/``increase`` read as a counter reset.
"""

from __future__ import annotations

from collections.abc import Mapping

from model.labels import METRIC_NAME, to_labels
from model.series import Sample
from store.limits import counter_samples


def _outcomes(name: str, counts: Mapping[str, int], ts_ms: int) -> list[Sample]:
    """``{name}_samples_total{outcome}`` for the counts, ``{name}_pending_samples`` for ``pending``."""
    totals = {k: v for k, v in counts.items() if k != "pending"}
    out = counter_samples(f"{name}_samples_total", totals, ts_ms, key="outcome")
    if "pending" in counts:
        pending = to_labels({METRIC_NAME: f"{name}_pending_samples"})
        out.append(Sample(pending, ts_ms, float(counts["pending"])))
    return out


def self_samples(
    ts_ms: int,
    dropped: Mapping[str, int],
    export_counts: Mapping[str, int] | None = None,
    ingest_log_counts: Mapping[str, int] | None = None,
) -> list[Sample]:
    """One sample per series above, at ``ts_ms``; the writer's reasons only once one was counted."""
    out = counter_samples("infersight_ingest_dropped_samples_total", dropped, ts_ms)
    if export_counts is not None:
        out += _outcomes("infersight_export", export_counts, ts_ms)
    if ingest_log_counts is not None:
        out += _outcomes("infersight_ingest_log", ingest_log_counts, ts_ms)
    return out
