"""Events API: list (folded, newest first, paginated), receive from the control plane, stream (SSE).

``POST /api/v1/events`` takes ``{"events": [...]}`` or one event; an event either carries its
``message`` or names a guide template and its values (``{"template": "E36", "args": [...]}``),
which renders the guide's wording exactly. An optional ``id`` (at most 64 printable characters)
names the occurrence: posting it again (a sidecar resending a batch whose answer it lost) adds no
occurrence, and an id this server stored lately is not streamed or counted again either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from model.event_catalog import TEMPLATES
from model.events import MAX_EVENT_ID, SOURCES, Event, EventObject
from query.api.errors import error_response
from query.api.json_body import read_json
from query.api.recent_ids import RecentIds
from query.api.tenancy import current_project
from query.events.hub import EventHub
from store.backend import StoreUnavailableError
from store.events import FILTERS, EventQuery

MAX_LIMIT = 500
_OBJECT_KEYS = ("project_id", "service_id", "service_name", "group_id", "instance_name", "unit", "pod")


def event_from_json(data: Any, now_ms: int) -> Event:
    """Validate one submitted event; ValueError names the wrong field."""
    if not isinstance(data, dict):
        raise ValueError("event: expected a JSON object")
    unknown = set(data) - {
        "kind",
        "type",
        "reason",
        "message",
        "template",
        "args",
        "object",
        "time",
        "source",
        "id",
    }
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown field")
    obj = data.get("object") or {}
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k, ""), str) for k in _OBJECT_KEYS):
        raise ValueError("object: expected an object of strings")
    if set(obj) - set(_OBJECT_KEYS):
        raise ValueError(f"object.{sorted(set(obj) - set(_OBJECT_KEYS))[0]}: unknown field")
    template_id = data.get("template")
    if template_id is not None:
        if not isinstance(template_id, str):
            raise ValueError("template: expected a template id (a string)")
        template = TEMPLATES.get(template_id)
        if template is None:
            raise ValueError(f"template: unknown template {template_id!r}")
        args = data.get("args", [])
        if not isinstance(args, list):
            raise ValueError("args: expected a list")
        try:
            message = template.render(*args)
        except (ValueError, TypeError) as err:
            raise ValueError(f"args: {err}") from None
        kind, type_, reason = template.kind, template.type, data.get("reason") or template.reason
    else:
        kind, type_, reason, message = (data.get(k, "") for k in ("kind", "type", "reason", "message"))
    time_ms = data.get("time", now_ms)
    if not isinstance(time_ms, int) or isinstance(time_ms, bool):
        raise ValueError("time: expected epoch milliseconds")
    for name, value in (("kind", kind), ("type", type_), ("reason", reason), ("message", message)):
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string")
    source = data.get("source", "platform")
    if source not in SOURCES:  # "infersight": a sidecar's own events (probe transitions)
        raise ValueError(f"source: one of {', '.join(SOURCES)}")
    event_id = data.get("id", "")
    if not isinstance(event_id, str) or len(event_id) > MAX_EVENT_ID or not event_id.isprintable():
        raise ValueError(f"id: a string of at most {MAX_EVENT_ID} printable characters")
    event = Event(kind, type_, reason, message, EventObject(**obj), time_ms, source=source, event_id=event_id)
    event.validate()
    return event


def _event_json(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "object": {k: getattr(event.obj, k) for k in _OBJECT_KEYS},
        "time": event.time_ms,
        "source": event.source,
    }


def _scoped_filters(params: Any) -> tuple[tuple[str, str], ...]:
    project = current_project()
    filters = [(n, params[n]) for n in FILTERS if params.get(n) and not (n == "project_id" and project)]
    if project is not None:
        filters.append(("project_id", project))  # a confined caller sees only its own project
    return tuple(filters)


def build_events_router(hub: EventHub, recent: RecentIds | None = None) -> APIRouter:
    router = APIRouter(prefix="/api/v1/events")
    recent = recent if recent is not None else RecentIds()

    @router.get("")
    async def list_events(request: Request) -> Any:
        p = request.query_params
        try:
            limit = int(p.get("limit", "50"))
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError(f"limit: must be between 1 and {MAX_LIMIT}")
            query = EventQuery(
                from_ms=int(p.get("from", "0")),
                to_ms=int(p.get("to", str(2**62))),
                filters=_scoped_filters(p),
                text=p.get("q", ""),
                limit=limit,
                cursor=p.get("next") or None,
            )
            folded, cursor = await run_in_threadpool(hub.log.list, query, int(time.time() * 1000))
        except ValueError as err:
            return error_response("bad_data", str(err))
        return {"status": "success", "data": {"events": [e.to_json() for e in folded], "next": cursor}}

    @router.post("")
    async def receive(request: Request) -> Any:
        now_ms = int(time.time() * 1000)
        try:
            body = await read_json(request)
            items = body["events"] if isinstance(body, dict) and "events" in body else [body]
            if not isinstance(items, list):
                raise ValueError("events: expected a list")
            events = []
            for i, item in enumerate(items):
                try:
                    events.append(event_from_json(item, now_ms))
                except ValueError as err:
                    raise ValueError(f"events[{i}].{err}" if len(items) > 1 else str(err)) from None
        except ValueError as err:
            return error_response("bad_data", str(err))
        project = current_project()
        if project is not None:
            if any(e.obj.project_id not in ("", project) for e in events):
                return error_response("forbidden", "events may only be written to the key's own project")
            events = [
                e
                if e.obj.project_id
                else dataclasses.replace(e, obj=dataclasses.replace(e.obj, project_id=project))
                for e in events
            ]
        fresh, keys = [], set()
        for e in events:
            key = (e.obj.project_id, e.event_id)
            if e.event_id and (key in keys or recent.seen(key)):
                continue
            keys.add(key)
            fresh.append(e)
        try:
            await run_in_threadpool(hub.publish, fresh)
        except StoreUnavailableError as err:  # the sender keeps the events and retries
            return error_response("unavailable", f"events not stored: {err}")
        recent.remember([key for key in keys if key[1]])
        return {"status": "success", "data": {"received": len(events), "repeated": len(events) - len(fresh)}}

    @router.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        queue = hub.subscribe()
        project = current_project()

        async def sse() -> AsyncIterator[bytes]:
            try:
                yield b": infersight events\n\n"
                while not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if project is not None and event.obj.project_id != project:
                        continue
                    yield f"event: {event.kind}\ndata: {json.dumps(_event_json(event))}\n\n".encode()
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(sse(), media_type="text/event-stream")

    return router
