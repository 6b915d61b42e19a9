"""``GET /metrics`` (the Prometheus text of ``app.state.metrics``) and ``RequestTimer``, the
middleware that times every HTTP request by route template."""

import time

from fastapi import APIRouter, Request, Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from volcast.live.metrics import Metrics

UNMATCHED = "(unmatched)"
"""The route label of requests no route took (404s, refusals before routing): their raw paths
are chosen by clients and would make labels without bound; their status tells them apart."""

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Async, so that a scrape is answered while every worker thread computes forecasts."""
    metrics: Metrics = request.app.state.metrics
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


class RequestTimer:
    """Pure ASGI middleware: records each HTTP request's route template, method, status and
    the seconds until its response started. Until the start, not the end: a streamed answer
    (the dashboard's live updates) would otherwise count its whole lifetime as latency, while
    an ordinary response is computed in full before it starts."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, before = time.perf_counter(), dict(scope)  # routing rewrites scope's keys
        answered = False

        def record(status: int) -> None:
            self.metrics.request(template(scope, before), scope["method"], status,
                                 time.perf_counter() - started)

        async def timed_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            if not answered:  # an error escaped before any answer: the server answers 500
                record(500)


def template(scope: Scope, before: Scope) -> str:
    """The path template of the route that took the request. FastAPI puts its own routes in
    ``scope["route"]``; mounts (static files) are found by matching the app's routes against
    the scope as it came in. Requests refused before routing (Host, token) are UNMATCHED."""
    route: BaseRoute | None = scope.get("route")
    if route is None:
        routes: list[BaseRoute] = getattr(before.get("app"), "routes", [])
        matches = [(r.matches(before)[0], r) for r in routes]
        best = max(matches, key=lambda pair: pair[0].value, default=(Match.NONE, None))
        route = best[1] if best[0] is not Match.NONE else None
    return getattr(route, "path", None) or UNMATCHED
