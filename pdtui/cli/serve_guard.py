"""A token, Host and Origin guard in front of textual-serve's aiohttp app (``pdtui serve``).

textual-serve has no authentication and checks neither Host nor Origin, while every WebSocket it
accepts starts a pdtui process with this machine's SSH access to the cluster. Listening on
127.0.0.1 keeps other machines out but not other users of the same host, nor a web page open in
the operator's browser (a cross-site WebSocket, or DNS rebinding to 127.0.0.1). The guard, an
aiohttp middleware on textual-serve's own app, refuses with 403 any request

- whose Host is not the served address (``host:port``): this defeats DNS rebinding;
- whose Origin, when present, is not the served origin; a WebSocket must carry one (browsers
  always send it), so a page on another origin cannot open the terminal even with the cookie;
- without the per-run token, given as ``?token=`` (as Jupyter prints it) or, after a page load
  with a valid ``?token=``, as an HttpOnly, SameSite=Strict cookie, compared in constant time.

A refused request reaches no textual-serve handler: no page, no static file, no process.
The module needs aiohttp (textual-serve's dependency) and never imports textual-serve itself:
the caller passes its ``Server``.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Middleware

TOKEN_PARAM = "token"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _new_token() -> str:
    return secrets.token_urlsafe(32)


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison; any text is accepted (compare_digest rejects non-ASCII str)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


@dataclass(frozen=True)
class Guard:
    """What a request must show to reach the app served on ``host:port``."""

    host: str
    port: int
    token: str = field(default_factory=_new_token, repr=False)

    @property
    def authority(self) -> str:
        """The served ``host:port`` as a Host header carries it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}".lower()

    @property
    def origin(self) -> str:
        return f"http://{self.authority}"

    @property
    def url(self) -> str:
        """The address to print once at start: the only place the token is shown."""
        return f"{self.origin}/?{TOKEN_PARAM}={self.token}"

    @property
    def cookie(self) -> str:
        """Cookies are per host, not per port: the port keeps two servers' cookies apart."""
        return f"pdtui_serve_token_{self.port}"

    def refusal(
        self, headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str]
    ) -> str | None:
        """Why a request is refused, or None when it may reach textual-serve."""
        if headers.get("Host", "").lower() != self.authority:
            return "foreign Host"
        origin = headers.get("Origin")
        if origin is None and headers.get("Upgrade", "").lower() == "websocket":
            return "WebSocket without Origin"
        if origin is not None and origin.lower() != self.origin:
            return "foreign Origin"
        if not self.token_ok(query.get(TOKEN_PARAM) or cookies.get(self.cookie) or ""):
            return "no valid token"
        return None

    def token_ok(self, given: str) -> bool:
        return _same(given, self.token)

    def middleware(self) -> Middleware:
        """The aiohttp middleware enforcing :meth:`refusal`; a valid ``?token=`` sets the cookie."""

        @web.middleware
        async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
            why = self.refusal(request.headers, request.query, request.cookies)
            if why is not None:
                return web.Response(status=403, text=f"forbidden: {why}\n")
            response = await handler(request)
            if self.token_ok(request.query.get(TOKEN_PARAM, "")) and not response.prepared:
                response.set_cookie(
                    self.cookie, self.token, path="/", httponly=True, samesite="Strict"
                )
            return response

        return guard


class ServedApp(Protocol):
    """The part of ``textual_serve.server.Server`` the guard uses."""

    host: str
    port: int

    async def _make_app(self) -> web.Application: ...

    def initialize_logging(self) -> None: ...

    def request_exit(self) -> None: ...


async def guarded_app(server: ServedApp, guard: Guard) -> web.Application:
    """textual-serve's own app (routes, startup hooks) with the guard as its first middleware."""
    app = await server._make_app()
    app.middlewares.insert(0, guard.middleware())
    return app


def serve(server: ServedApp, guard: Guard) -> None:
    """Run ``server`` behind ``guard`` until SIGINT or SIGTERM, as ``Server.serve`` does but
    without aiohttp's access log, which would print every ``?token=`` it sees."""
    server.initialize_logging()
    loop = asyncio.new_event_loop()
    loop.add_signal_handler(signal.SIGINT, server.request_exit)
    loop.add_signal_handler(signal.SIGTERM, server.request_exit)
    web.run_app(
        guarded_app(server, guard),
        host=server.host,
        port=server.port,
        handle_signals=False,
        loop=loop,
        access_log=None,
        print=lambda *_: None,
    )
