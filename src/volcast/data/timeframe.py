"""Timeframes and timestamps: integer milliseconds UTC everywhere, ccxt's timeframe spelling."""

import re
from datetime import UTC, datetime

from volcast.errors import VolcastError

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MAX_TIMEFRAME_MS = 4 * WEEK_MS
"""The longest candle volcast stores; longer "timeframes" are typos (and overflow times)."""
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TF_RE = re.compile(r"^([1-9][0-9]*)([smhdw])\Z")


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle in ms; months and years are refused because their length varies,
    which would make gaps impossible to tell from calendar effects."""
    match = _TF_RE.match(timeframe)
    ms = int(match.group(1)) * _UNIT_MS[match.group(2)] if match else 0
    if not 0 < ms <= MAX_TIMEFRAME_MS:
        raise VolcastError(f"unsupported timeframe '{timeframe}': use ccxt spelling such as "
                           "1m, 5m, 15m, 1h, 4h, 1d, 1w (at most 4 weeks)")
    return ms


def parse_time(text: str) -> int:
    """ISO 8601 (naive means UTC) or integer milliseconds since the epoch -> ms UTC."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    try:
        moment = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise VolcastError(
            f"bad date '{text}': use ISO 8601 such as 2024-01-31 or 2024-01-31T12:00Z, "
            "or milliseconds since 1970"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def format_time(ms: float | None) -> str:
    """ms UTC -> '2024-01-31 12:00' (UTC), the way volcast prints times. A time no calendar
    holds (past year 9999, not finite) prints as its milliseconds, so the message that refuses
    it can still be written."""
    if ms is None:
        return "-"
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    except (ValueError, OverflowError, OSError):
        return f"{ms:.16g} ms"
