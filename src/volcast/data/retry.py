"""The one backoff rule of every download (candles through ccxt, covariates over plain HTTP):
exponential with jitter, bounded, and never shorter than what the server asked for."""

import random
from dataclasses import dataclass, field


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
