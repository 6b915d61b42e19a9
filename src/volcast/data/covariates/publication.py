"""When each covariate value became public: one rule per source, as code.

A value is stored with the time it is dated (``ts``) and the time it became public
(``published_ms``); a model may use it only from ``published_ms`` on (``asof.py``). Every rule
errs late: a value used an hour after it was public costs a little freshness, a value used an
hour before it was public is look-ahead, and a backtest with look-ahead reports a skill no live
forecast will have. docs/covariates.md says why each rule is what it is.

Every function takes and returns int64 ms UTC arrays, one value per row.
"""

from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from volcast.data.timeframe import DAY_MS
from volcast.errors import VolcastError

NEW_YORK = ZoneInfo("America/New_York")
US_CLOSE = pd.Timedelta(hours=16, minutes=15)
"""CBOE's VIX close is final at 16:15 New York time (its options trade until then)."""
FRED_DAILY = pd.Timedelta(hours=18)
"""When a FRED daily series is taken as public on its release day: the Fed posts H.15 at
16:15 New York and FRED mirrors it minutes later; VIXCLS and the stock indexes reach FRED the
next morning. 18:00 leaves a margin over each."""
Rule = Callable[[np.ndarray], np.ndarray]


def _days(ts: np.ndarray) -> np.ndarray:
    """The UTC calendar day each value is dated (datetime64[D])."""
    return (np.asarray(ts, dtype=np.int64) // DAY_MS).astype("datetime64[D]")


def _new_york_ms(days: np.ndarray, at: pd.Timedelta) -> np.ndarray:
    """``at`` (a wall-clock time) on each New York day, as ms UTC: daylight saving time taken
    from the tz database, so 16:15 is 20:15 UTC in summer and 21:15 UTC in winter."""
    local = pd.DatetimeIndex(days.astype("datetime64[ns]")) + at
    return local.tz_localize(NEW_YORK).tz_convert("UTC").asi8 // 1_000_000


def _holidays(days: np.ndarray) -> np.ndarray:
    """US federal holidays (the Fed's and FRED's days off) around the given days."""
    if len(days) == 0:
        return np.array([], dtype="datetime64[D]")
    span = USFederalHolidayCalendar().holidays(str(days.min()), str(days.max() + 30))
    return span.to_numpy().astype("datetime64[D]")


def _next_business_day(days: np.ndarray) -> np.ndarray:
    """The first US business day (weekday, not a federal holiday) strictly after each day."""
    return np.busday_offset(days + 1, 0, roll="forward", holidays=_holidays(days))


def fear_greed(ts: np.ndarray) -> np.ndarray:
    """alternative.me computes the value dated D from D-1's market and publishes it at about
    00:00 UTC of D, which is the time it is dated."""
    return np.asarray(ts, dtype=np.int64)


def vix(ts: np.ndarray) -> np.ndarray:
    """The close of the US trading day D is known at 16:15 New York time of D."""
    return _new_york_ms(_days(ts), US_CLOSE)


def fred_next_business_day(ts: np.ndarray) -> np.ndarray:
    """A FRED daily observation dated D: on FRED the next US business day (H.15 rates are
    posted the business day after the one they describe), taken at 18:00 New York. A Friday's
    value is public on Monday, never over the weekend."""
    days = _days(ts)
    return _new_york_ms(_next_business_day(days), FRED_DAILY)


def fred_next_week(ts: np.ndarray) -> np.ndarray:
    """A daily observation of the Fed's H.10 release (dollar indexes, exchange rates): H.10 is
    weekly, on the Monday after the week it covers (Tuesday after a holiday Monday), so the
    value dated D is public on the first business day of the week after D's, at 18:00 New
    York."""
    days = _days(ts)
    weekday = (days.astype(np.int64) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    monday = days + (7 - weekday).astype("timedelta64[D]")
    return _new_york_ms(np.busday_offset(monday, 0, roll="forward",
                                         holidays=_holidays(days)), FRED_DAILY)


FRED_RULES: dict[str, Rule] = {
    **dict.fromkeys(["VIXCLS", "SP500", "NASDAQCOM", "DJIA", "DFF", "DGS1MO", "DGS3MO",
                     "DGS6MO", "DGS1", "DGS2", "DGS5", "DGS10", "DGS30", "T10Y2Y", "T10Y3M"],
                    fred_next_business_day),
    **dict.fromkeys(["DTWEXBGS", "DTWEXAFEGS", "DTWEXEMEGS", "DEXUSEU", "DEXJPUS", "DEXUSUK",
                     "DEXCHUS"], fred_next_week),
}
"""The FRED series volcast knows the release timing of. A series is added here with its rule
(and a test), never fetched under a guessed one: a weekly or monthly release read as daily
would hand models values days or weeks before they were public."""


def fred(series_id: str) -> Rule:
    """The rule of one FRED series; one line naming the known ones for any other."""
    if series_id not in FRED_RULES:
        raise VolcastError(f"FRED series '{series_id}' has no publication rule in volcast, so "
                           f"it could leak the future into backtests; known: "
                           f"{', '.join(sorted(FRED_RULES))}")
    return FRED_RULES[series_id]


def funding(ts: np.ndarray) -> np.ndarray:
    """A funding rate is settled, and shown by the exchange, at its funding time."""
    return np.asarray(ts, dtype=np.int64)


def open_interest(ts: np.ndarray, period_ms: int) -> np.ndarray:
    """An open-interest statistic stamped ``ts`` is taken as final when the period that ``ts``
    opens ends: late enough whether an exchange stamps a period with its start or with the
    time of its snapshot."""
    return np.asarray(ts, dtype=np.int64) + period_ms
