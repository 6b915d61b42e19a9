"""Who may do what: the Host names the server answers to, and the API token.

- Host: a web page can make a browser send requests to 127.0.0.1 under a name of its own
  (DNS rebinding); such requests carry that name in their Host header, so only the names of
  the bound address, a few loopback names and the names an operator allowed are answered
  (421 otherwise). Bound to a wildcard address (0.0.0.0, ::), any IP address is answered as
  well: rebinding needs a name, never a literal address.
- Origin: a request that changes state and comes from a page of another site is refused (403).
- Token: required (``Authorization: Bearer TOKEN``) on every request that changes state, and
  on reads too with ``token_for_reads``; compared in constant time, never logged or stored.
  The dashboard page, its files, ``/health`` and ``/api/auth`` stay open, so that the page can
  load and ask for the token.
"""

import hmac
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from volcast.errors import VolcastError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = ("/", "/health", "/api/auth", "/favicon.ico")
OPEN_PREFIXES = ("/static/", "/vendor/")
MIN_TOKEN = 16
"""Characters an API token needs at least: a short one can be guessed over the network."""


def name_of(host: str) -> str:
    """The name or address of a Host header or URL authority, lowercase, without port,
    brackets or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":")[0]
    return host.rstrip(".")


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def read_token(path: Path | None, environment: str | None) -> str | None:
    """The API token from --token-file, else from $VOLCAST_API_TOKEN; None when neither."""
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise VolcastError(f"cannot read --token-file {path}: "
                               f"{getattr(error, 'strerror', None) or error}") from None
        where = f"--token-file {path}"
    elif environment:
        token, where = environment.strip(), "$VOLCAST_API_TOKEN"
    else:
        return None
    if len(token) < MIN_TOKEN or not token.isascii() or not token.isprintable() \
            or any(c.isspace() for c in token):
        raise VolcastError(f"the API token in {where} must be at least {MIN_TOKEN} printable "
                           "ASCII characters without spaces; make one with `python -c 'import "
                           "secrets; print(secrets.token_urlsafe(32))'`")
    return token


@dataclass(frozen=True)
class Access:
    hosts: frozenset[str] = LOOPBACK_NAMES
    """Host names (and addresses) answered; ``*`` answers every name."""
    any_address: bool = False
    """Bound to a wildcard address: a Host that is an IP address is answered too."""
    token: str | None = field(default=None, repr=False)
    token_for_reads: bool = False

    @classmethod
    def for_bind(cls, host: str, addresses: Iterable[str], allow: Iterable[str],
                 token: str | None, token_for_reads: bool = False) -> "Access":
        """What a server listening on ``host`` (resolved to ``addresses``) answers; refuses
        to go beyond loopback without a token."""
        bound = [ipaddress.ip_address(a.split("%")[0]) for a in addresses]
        loopback = all(a.is_loopback for a in bound)
        if not loopback and token is None:
            raise VolcastError(f"refusing to listen on {host} without an API token: anyone who "
                               "reaches it could start jobs; give --token-file PATH or set "
                               "VOLCAST_API_TOKEN")
        if token_for_reads and token is None:
            raise VolcastError("--token-for-reads needs an API token: give --token-file PATH or "
                               "set VOLCAST_API_TOKEN")
        wildcard = any(a.is_unspecified for a in bound)
        names = {name_of(host), *(str(a) for a in bound), *(name_of(n) for n in allow)}
        if loopback or wildcard:
            names |= LOOPBACK_NAMES
        if wildcard:
            names.add(socket.gethostname().lower())
        return cls(frozenset(names), wildcard, token, token_for_reads)

    @property
    def auth(self) -> dict[str, bool]:
        """Which requests need the token (what the dashboard page asks before it asks you)."""
        return {"writes": self.token is not None, "reads": self.token_for_reads}

    def answers(self, name: str) -> bool:
        return "*" in self.hosts or name in self.hosts or (self.any_address and is_address(name))

    def refusal(self, method: str, path: str, headers: Headers) -> tuple[int, str] | None:
        """(status, message) when this request must not be answered; None when it may."""
        host = name_of(headers.get("host", ""))
        if not self.answers(host):
            return 421, (f"this server does not answer to host '{host[:100]}'; its operator "
                         "can allow that name with `volcast serve --allow-host NAME`")
        writes = method not in SAFE_METHODS
        origin = headers.get("origin")
        if writes and origin is not None and not self.answers(name_of(urlsplit(origin).netloc)):
            return 403, "requests that change state are refused from pages of another site"
        if self.token is not None and (writes or self.token_for_reads) and not (
                path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)) \
                and not self._bearer(headers.get("authorization", "")):
            return 401, ("this request needs the API token as the header 'Authorization: "
                         "Bearer TOKEN' (the dashboard asks for it)")
        return None

    def _bearer(self, authorization: str) -> bool:
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode())  # type: ignore[union-attr]


class Guard:
    """ASGI middleware that answers refused requests itself (one JSON line) before any route,
    dependency or body parsing runs."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = None
        if scope["type"] == "http":
            refused = self.access.refusal(scope["method"], scope["path"], Headers(scope=scope))
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, message = refused
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await JSONResponse({"detail": message}, status, headers)(scope, receive, send)
