"""Per-scrape health series, as Prometheus writes them for every target, plus two of ours.

``up`` (1/0), ``scrape_duration_seconds``, ``scrape_samples_scraped`` (samples the target
exposed), ``infersight_scrape_body_bytes`` and the counter ``infersight_scrape_errors_total{reason}``
(every known reason is always written, from 0, so ``rate()`` works from the first scrape; the
reasons are ``collector.sidecar.ERROR_REASONS``, described in docs/collector.md), and the counter
``infersight_target_restarts_total``: restarts of the target the sidecar has seen since it started
(``collector/restarts.py``), written from 0 so that ``increase()`` sees the first one.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector import catalog
from model.labels import METRIC_NAME, to_labels
from model.series import Sample


@dataclass(frozen=True, slots=True)
class ScrapeOutcome:
    """What one scrape did: success, wall time (s), samples exposed, body size, error totals so far."""

    up: bool
    duration_s: float
    samples_scraped: int
    body_bytes: int
    errors_total: dict[str, int]
    restarts_total: int = 0


# The health series' names are the sidecar's own: a target's series of one of these names is
# dropped (as a duplicate), so no target can add a reason to our error counter or a second ``up``.
HEALTH_NAMES = frozenset(
    {
        catalog.UP,
        catalog.SCRAPE_DURATION_SECONDS,
        catalog.SCRAPE_SAMPLES_SCRAPED,
        catalog.SCRAPE_BODY_BYTES,
        catalog.SCRAPE_ERRORS_TOTAL,
        catalog.TARGET_RESTARTS_TOTAL,
    }
)


def health_samples(outcome: ScrapeOutcome, identity: dict[str, str], ts_ms: int) -> list[Sample]:
    def sample(name: str, value: float, **extra: str) -> Sample:
        return Sample(to_labels({**identity, **extra, METRIC_NAME: name}), ts_ms, float(value))

    out = [
        sample(catalog.UP, 1.0 if outcome.up else 0.0),
        sample(catalog.SCRAPE_DURATION_SECONDS, outcome.duration_s),
        sample(catalog.SCRAPE_SAMPLES_SCRAPED, outcome.samples_scraped),
        sample(catalog.SCRAPE_BODY_BYTES, outcome.body_bytes),
        sample(catalog.TARGET_RESTARTS_TOTAL, outcome.restarts_total),
    ]
    out.extend(
        sample(catalog.SCRAPE_ERRORS_TOTAL, count, reason=reason)
        for reason, count in sorted(outcome.errors_total.items())
    )
    return out
