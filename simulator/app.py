"""The simulator's HTTP face: OpenAI-compatible completions, vLLM's ``/metrics``, ground truth.

Routes: ``POST /v1/chat/completions``, ``POST /v1/completions``, ``GET /v1/models``,
``GET /health``, ``GET /metrics`` (content negotiated as prometheus_client's ASGI app does, which
is what vLLM mounts) and ``GET /sim/served`` (the ground-truth records as JSON).
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client.exposition import choose_encoder

from simulator.devices import dcgm_text, npu_exporter_text
from simulator.engine import Simulator
from simulator.http_metrics import HttpMetricsMiddleware
from simulator.plan import RequestError
from simulator.shapes import CHAT_PATH, COMPLETIONS_PATH, ChunkWriter, error_body


def _drop_created(text: bytes) -> bytes:
    """Remove prometheus_client's ``*_created`` series from the text format.

    The captured vLLM exposition (testdata/captured/engines/vllm) has none; OpenMetrics output
    keeps them because there they are part of the counter/histogram family.
    """
    kept = []
    for line in text.decode().splitlines():
        fields = line.split(" ")
        name = fields[2] if line.startswith("#") and len(fields) > 2 else line.split("{")[0].split(" ")[0]
        if not name.endswith("_created"):
            kept.append(line)
    return ("\n".join(kept) + "\n").encode()


def create_app(sim: Simulator) -> FastAPI:
    """A FastAPI app serving ``sim``; HTTP series go into ``sim.registry`` as vLLM's do."""
    app = FastAPI(title="infersight engine simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(HttpMetricsMiddleware, registry=sim.registry, routes=lambda: app.router.routes)

    async def serve(request: Request, *, chat: bool) -> Response:
        t0 = time.perf_counter()
        path = CHAT_PATH if chat else COMPLETIONS_PATH
        stream, model = False, ""
        try:
            try:
                body: Any = json.loads(await request.body())
            except ValueError as exc:
                raise RequestError(400, f"invalid JSON body: {exc}") from exc
            if not isinstance(body, dict):
                raise RequestError(400, "the body must be a JSON object")
            stream = bool(body.get("stream", False))
            model = str(body.get("model", ""))
            if model != sim.config.model_name:
                raise RequestError(404, f"The model `{model}` does not exist.")
            plan = sim.plan(body, chat=chat)
            if plan.error_status is not None:
                raise RequestError(plan.error_status, f"simulated error {plan.error_status}")
        except RequestError as exc:
            sim.record_error(path=path, stream=stream, model=model, status=exc.status, t0=t0)
            return JSONResponse(error_body(exc.status, str(exc)), status_code=exc.status)
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage", False)) if isinstance(options, dict) else False
        run = sim.start_run(plan, path=path, stream=stream, model=model, t0=t0)
        writer = ChunkWriter(run.request_id, model, int(time.time()), chat=chat, include_usage=include_usage)
        if stream:
            return StreamingResponse(sim.stream(run, writer), media_type="text/event-stream")
        return JSONResponse(await sim.complete(run, writer))

    @app.post(CHAT_PATH)
    async def chat_completions(request: Request) -> Response:
        return await serve(request, chat=True)

    @app.post(COMPLETIONS_PATH)
    async def completions(request: Request) -> Response:
        return await serve(request, chat=False)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": sim.config.model_name, "object": "model", "created": 0, "owned_by": "vllm"}],
        }

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encoder(sim.registry)
        if content_type.startswith("text/plain"):
            body = _drop_created(body)
        return Response(body, media_type=None, headers={"Content-Type": content_type})

    @app.get("/dcgm/metrics")
    async def dcgm() -> Response:
        text = dcgm_text(sim.running, sim.kv_usage, f"GPU-sim-{id(sim):x}")
        return Response(text, media_type="text/plain; version=0.0.4")

    @app.get("/npu-exporter/metrics")
    async def npu_exporter() -> Response:
        return Response(npu_exporter_text(sim.running, sim.kv_usage), media_type="text/plain; version=0.0.4")

    @app.get("/sim/served")
    async def served() -> list[dict[str, Any]]:
        return [s.to_json() for s in sim.served]

    return app
