"""CTS-style audit trace records (SEED-SPEC §6; field names as Huawei Cloud Trace Service's v3 API).

A trace says who did what to which resource, from where, and how it ended. ``trace_rating`` is
CTS's: ``normal`` (succeeded), ``warning`` (failed), ``incident`` (serious consequence).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from model.times import MAX_TIME_MS, MIN_TIME_MS

RATINGS = ("normal", "warning", "incident")
TRACE_TYPES = ("ConsoleAction", "ApiCall", "SystemAction")
MASK = "********"
# Keys whose values are credentials: masked before a trace is stored (CTS shows adminPass as ********).
_SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|access[_-]?key|credential", re.I
)


@dataclass(frozen=True, slots=True)
class TraceUser:
    id: str = ""
    name: str = ""
    domain_id: str = ""
    domain_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "domain": {"id": self.domain_id, "name": self.domain_name}}


@dataclass(frozen=True, slots=True)
class Trace:
    """One audited operation. Times are int ms since the epoch, as CTS's API gives them."""

    trace_name: str
    resource_type: str
    time_ms: int
    project_id: str = ""
    trace_rating: str = "normal"
    trace_type: str = "ApiCall"
    service_type: str = "infersight"
    resource_id: str = ""
    resource_name: str = ""
    user: TraceUser = field(default_factory=TraceUser)
    source_ip: str = ""
    request: str = ""
    response: str = ""
    code: str = ""
    message: str = ""
    api_version: str = "v1"
    request_id: str = ""
    trace_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_json(self, record_time_ms: int | None = None) -> dict[str, Any]:
        """The CTS v3 JSON shape (``time``/``record_time`` in ms)."""
        out = asdict(self)
        out["user"] = self.user.to_json()
        out["time"] = out.pop("time_ms")
        if record_time_ms is not None:
            out["record_time"] = record_time_ms
        return out


class TraceError(ValueError):
    """A trace submitted for ingest is malformed; the message names the field."""


def mask_secrets(body: Any) -> Any:
    """A copy of a JSON-like value with every credential-looking key's value replaced by ``********``."""
    if isinstance(body, dict):
        return {k: MASK if _SECRET_KEY.search(str(k)) else mask_secrets(v) for k, v in body.items()}
    if isinstance(body, list):
        return [mask_secrets(v) for v in body]
    return body


def _text(value: Any, name: str) -> str:
    """Request/response fields: strings as they are, JSON values masked and serialised."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return json.dumps(mask_secrets(parsed), sort_keys=True) if isinstance(parsed, dict | list) else value
    if isinstance(value, dict | list):
        return json.dumps(mask_secrets(value), sort_keys=True)
    raise TraceError(f"{name}: expected a string or a JSON object")


def trace_from_json(data: Any) -> Trace:
    """Validate a CTS-shaped trace submitted by the platform; raises TraceError naming the field."""
    if not isinstance(data, dict):
        raise TraceError("trace: expected a JSON object")

    def string(name: str, required: bool = False) -> str:
        value = data.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise TraceError(f"{name}: expected a string")
        if required and not str(value):
            raise TraceError(f"{name}: required")
        return str(value)

    rating = string("trace_rating") or "normal"
    if rating not in RATINGS:
        raise TraceError(f"trace_rating: must be one of {', '.join(RATINGS)}, got {rating!r}")
    trace_type = string("trace_type") or "ApiCall"
    if trace_type not in TRACE_TYPES:
        raise TraceError(f"trace_type: must be one of {', '.join(TRACE_TYPES)}, got {trace_type!r}")
    time_ms = data.get("time")
    if not isinstance(time_ms, int) or isinstance(time_ms, bool) or not MIN_TIME_MS <= time_ms <= MAX_TIME_MS:
        raise TraceError("time: required, epoch milliseconds (13-digit integer) up to the year 2105")
    user = data.get("user") or {}
    if not isinstance(user, dict):
        raise TraceError("user: expected an object")
    domain = user.get("domain") or {}
    if not isinstance(domain, dict):
        raise TraceError("user.domain: expected an object")
    return Trace(
        trace_name=string("trace_name", required=True),
        resource_type=string("resource_type", required=True),
        time_ms=time_ms,
        project_id=string("project_id"),
        trace_rating=rating,
        trace_type=trace_type,
        service_type=string("service_type") or "ModelArts",
        resource_id=string("resource_id"),
        resource_name=string("resource_name"),
        user=TraceUser(
            str(user.get("id", "")),
            str(user.get("name", "")),
            str(domain.get("id", "")),
            str(domain.get("name", "")),
        ),
        source_ip=string("source_ip"),
        request=_text(data.get("request"), "request"),
        response=_text(data.get("response"), "response"),
        code=string("code"),
        message=string("message"),
        api_version=string("api_version") or "v1",
        request_id=string("request_id"),
        trace_id=string("trace_id") or str(uuid.uuid4()),
    )
