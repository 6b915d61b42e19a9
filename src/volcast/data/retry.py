"""The one backoff rule of every download (candles through ccxt, covariates over plain HTTP):
exponential with jitter, bounded, and never shorter than what the server asked for."""

import random
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRIED_STATUS = frozenset({408, 425, 429})
"""Besides every 5xx: HTTP statuses that say "later", not "never"."""


def retried(status: int) -> bool:
    """Whether an HTTP status is worth asking again."""
    return status in RETRIED_STATUS or status >= 500


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or
    unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(text).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded; a server's Retry-After wins when longer."""

    retries: int = 8
    base_s: float = 0.5
    max_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        backoff = min(self.max_s, self.base_s * 2**attempt) * (0.5 + self.rng.random() / 2)
        return max(backoff, min(retry_after_s or 0.0, self.max_s))
