"""An exchange's total in the workspace: built from the stored markets (``data.totals``) and
backtested with them, so that the forecasts of the total and of each market add up
(``evaluation.hierarchy``). The total is a stored series, so every other flow (forecast,
train, backtest of the total alone, the overview) takes it as it takes a market."""

import logging

from volcast.data import totals
from volcast.data.store import SeriesKey, is_total, units_of
from volcast.errors import VolcastError
from volcast.evaluation.compare import Progress
from volcast.evaluation.hierarchy import (
    DEFAULT_METHOD,
    VALIDATION_DAYS,
    HierarchyBacktest,
    backtest_hierarchy,
)
from volcast.workspace.core import Workspace
from volcast.workspace.sources import with_covariates

log = logging.getLogger(__name__)


def build(space: Workspace, exchange: str, quote: str, timeframe: str) -> totals.Built:
    """(Re)compute and store the exchange's total in ``quote`` (``data.totals.build``)."""
    return totals.build(space.store, exchange, quote, timeframe)


def follow(space: Workspace, exchange: str, timeframe: str,
           known: dict[SeriesKey, totals.Settled]) -> list[totals.Built]:
    """Bring the exchange's stored totals of ``timeframe`` (those `volcast totals build` made)
    up to its markets' candles, each recomputed from where its markets changed since its last
    build here (``known``, updated; whole the first time). `volcast serve` calls it after each
    close. A total that cannot be built (its markets fell under two) is logged in one line
    and the others still are."""
    store, done = space.store, []
    for symbol in [s for s in store.symbols(exchange, timeframe) if is_total(s)]:
        key = SeriesKey(exchange, symbol, timeframe)
        try:
            built = totals.build(store, exchange, units_of(symbol)[1], timeframe, known.get(key))
        except VolcastError as error:
            log.warning("total %s not rebuilt: %s", key, error)
            known.pop(key, None)
            continue
        known[key] = built.settled
        done.append(built)
    return done


def backtest(space: Workspace, exchange: str, quote: str, timeframe: str, model: str,
             method: str = DEFAULT_METHOD, cutoff: int | None = None,
             validation_days: float = VALIDATION_DAYS, progress: Progress | None = None
             ) -> HierarchyBacktest:
    """The protocol's backtest of ``model`` on the exchange's total and each of its current
    markets, reconciled (``evaluation.hierarchy.backtest_hierarchy``), with the settings of
    the workspace (``[model.NAME]``, ``[backtest]``). The total is summed from the markets
    here, so it adds up to them whether or not `totals build` has run since they changed."""
    long, key, _ = totals.hierarchy(space.store, exchange, quote, timeframe)
    long = with_covariates(long, [space.make(model)], space.store)
    return backtest_hierarchy(lambda: space.make(model), long, key.unique_id,
                              space.settings.backtest, method, cutoff, validation_days, progress)
