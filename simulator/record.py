"""What the simulator actually served, one record per request: the ground truth for tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServedRequest:
    """One served request; times in seconds, measured with ``time.perf_counter``.

    ``ttft_s`` runs from arrival to the write of the first content chunk (streamed) or to the
    moment the first token was produced (not streamed); it is the value observed into
    ``vllm:time_to_first_token_seconds``. ``itl_s`` holds the gaps between successive tokens
    (each observed into the TPOT/ITL histograms). Error responses have ``ttft_s=None``.
    ``slowed``: the simulator delayed its first token on purpose (``slow_every``).
    """

    request_id: str
    arrival_unix_s: float
    path: str
    status: int
    stream: bool
    model: str
    ttft_s: float | None
    itl_s: tuple[float, ...]
    e2e_s: float
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    slowed: bool = False

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["itl_s"] = list(self.itl_s)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServedRequest:
        return cls(**{**data, "itl_s": tuple(data["itl_s"])})
