"""One GET with the download rules of the whole data layer, for the covariate APIs that are
plain HTTP (alternative.me, CBOE, FRED) rather than ccxt exchanges.

Retried with ``RetryPolicy`` (a server's Retry-After wins when longer): no answer (refused,
reset, timed out), 408, 425, 429 and 5xx, and a body its parser finds cut short
(``Incomplete``: JSON that does not parse, a CSV without its final line break). Any other
status is a one-line ``VolcastError`` that will not change on its own (a 400 for a wrong API
key). A secret in the query (FRED's API key) never reaches a message: only the host is named,
and the secret is masked in anything the server said.
"""

import asyncio
from collections.abc import Callable
from typing import TypeVar

import aiohttp

from volcast.data.retry import RetryPolicy, retried, retry_after_s
from volcast.errors import FetchFailed, VolcastError, one_line

T = TypeVar("T")
_MASK = "***"


class Incomplete(Exception):
    """The body was cut short in transit: ask again."""


def masked(text: str, secret: str | None) -> str:
    """``text`` on one line, at most 240 characters, with ``secret`` masked."""
    return one_line(text.replace(secret, _MASK) if secret else text)


async def _attempt(session: aiohttp.ClientSession, url: str, params: dict[str, str],
                   what: str, parse: Callable[[str], T], secret: str | None
                   ) -> tuple[T | None, str | None, float | None]:
    """One request: (parsed body, None, None) or (None, why it is worth retrying, the server's
    Retry-After); a status that will not change raises VolcastError."""
    async with session.get(url, params=params, allow_redirects=False) as response:
        body = await response.text(errors="replace")
        status = response.status
        if retried(status):
            return None, f"HTTP {status}", retry_after_s(response.headers.get("Retry-After"))
        if status != 200:
            raise VolcastError(f"{what}: HTTP {status} from {response.url.host} "
                               f"({masked(body, secret) or 'no body'})")
    try:
        return parse(body), None, None
    except Incomplete as exc:
        return None, f"cut short ({exc})", None


async def get(session: aiohttp.ClientSession, url: str, params: dict[str, str], what: str,
              retry: RetryPolicy, parse: Callable[[str], T], secret: str | None = None) -> T:
    """GET ``url`` with ``params`` and ``parse`` the body's text, retrying what is worth it;
    ``FetchFailed`` (saying why) once the retries are spent."""
    for attempt in range(retry.retries + 1):
        try:
            parsed, why, wait = await _attempt(session, url, params, what, parse, secret)
        except (TimeoutError, aiohttp.ClientError) as exc:
            parsed, why, wait = None, f"{type(exc).__name__}: {masked(str(exc), secret)}", None
        if why is None:
            return parsed  # type: ignore[return-value]
        if attempt == retry.retries:
            raise FetchFailed(f"{what}: gave up after {attempt} retries ({why.rstrip(': ')})")
        await asyncio.sleep(retry.delay(attempt, wait))
    raise AssertionError("unreachable")


def session(timeout_ms: int) -> aiohttp.ClientSession:
    """A client session whose every request gives up after ``timeout_ms`` (then retried)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000))
