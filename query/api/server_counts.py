"""What the API refused at its doors, gathered for the server's own series (``infersight.self_series``).

Why: a sender whose requests are refused (400 at the door, 401, 429, 503 while the store is down)
sees its own errors, but the operator sees nothing unless the server counts them where dashboards
and alert rules can read them. ``create_app`` builds one ``ApiCounters`` over the door checks of
each write route and the auth middleware's parts, and leaves it on ``app.state.counters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from query.api.failed_auth import FailedAuthLimiter
from query.api.tenancy import AuthCounts, auth_counts
from store.admission import Admission
from store.api_keys import KeyStore

__all__ = ["ApiCounters", "ApiCounts"]


@dataclass(frozen=True, slots=True)
class ApiCounts:
    """One reading: refused requests and their samples by (route, reason); the auth middleware's
    outcomes (``unauthorized``, ``too_many_failures``, ``store_unavailable``, ``store_lookups``),
    empty with auth off."""

    refused_requests: dict[tuple[str, str], int] = field(default_factory=dict)
    refused_samples: dict[tuple[str, str], int] = field(default_factory=dict)
    auth: dict[str, int] = field(default_factory=dict)


class ApiCounters:
    """Reads the counters where they are kept (each is thread-safe on its own)."""

    def __init__(
        self,
        admissions: Mapping[str, Admission],
        auth: tuple[AuthCounts, FailedAuthLimiter, KeyStore] | None = None,
    ) -> None:
        self.admissions = dict(admissions)
        self._auth = auth

    def read(self) -> ApiCounts:
        requests: dict[tuple[str, str], int] = {}
        samples: dict[tuple[str, str], int] = {}
        for route, admission in self.admissions.items():
            by_request, by_sample = admission.counts()
            requests.update(((route, reason), n) for reason, n in by_request.items())
            samples.update(((route, reason), n) for reason, n in by_sample.items())
        auth = auth_counts(*self._auth) if self._auth is not None else {}
        return ApiCounts(requests, samples, auth)
