"""Covariates: series beyond the candles (sentiment, macro, derivatives), stored with the time
each value became public so that no model sees a value before it was.

Public names:
- ``covariate_columns(store, names, long)``: the as-of join models read (``asof.py``);
- ``Covariate``, ``market_scope``: the names users type and where per-market ones are stored
  (``catalog.py``);
- ``publication``: the rule, per source, of when a value became public;
- ``table``: the ``covariates`` table in the candle store's file (write, read, listing).
"""

from volcast.data.covariates.asof import covariate_columns
from volcast.data.covariates.catalog import Covariate, market_scope

__all__ = ["Covariate", "covariate_columns", "market_scope"]
