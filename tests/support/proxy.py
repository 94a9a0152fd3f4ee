"""A small round-robin HTTP reverse proxy on loopback: several bot processes behind one URL, as a
load balancer (nginx, a cloud balancer) puts them. Each request goes to the next backend in turn;
the backend's status, headers and body come back as they are (a 503 with Retry-After too); a
backend that does not answer gives 502, so the caller retries as a platform would."""

from __future__ import annotations

import itertools

import httpx
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.server import LocalServer

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
)


class RoundRobinProxy:
    """Forwards every request to ``backends`` in turn; ``url`` is where to send them."""

    def __init__(self, backends: list[str], timeout: float = 30.0):
        if not backends:
            raise ValueError("a proxy needs at least one backend")
        self.backends = backends
        self.forwarded = 0
        self.failed = 0
        self._next = itertools.cycle(range(len(backends)))
        self._client = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=200))
        app = Starlette(routes=[Route("/{path:path}", self._forward, methods=["GET", "POST"])])
        self._server = LocalServer(app, "RoundRobinProxy")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()
        await self._client.aclose()

    async def _forward(self, request: Request) -> Response:
        backend = self.backends[next(self._next)]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = f"{backend}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
        try:
            body = await request.body()
        except ClientDisconnect:  # the caller gave up (stopping): nothing to forward
            return Response(status_code=499)
        try:
            answer = await self._client.request(request.method, target, content=body, headers=headers)
        except httpx.HTTPError:
            self.failed += 1
            return Response(status_code=502)
        self.forwarded += 1
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(answer.content, status_code=answer.status_code, headers=kept)
