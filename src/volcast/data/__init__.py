"""Candles in, candles out: exchanges through ccxt, files in common formats, one DuckDB store.

Public names:
- ``CandleStore``, ``SeriesKey``, ``units_of``: the store (``store.py``); each series records
  its units (base: what volume counts, quote: what prices are in).
- ``ExchangeClient``: the ccxt wrapper (``exchange.py``, the one ccxt import); ``RetryPolicy``,
  the backoff of every download (``retry.py``).
- ``sync_many``, ``follow``: the resumable pagination loop (``sync.py``), which fills holes.
- ``holes.py``: holes between stored candles and the stretches an exchange confirmed empty.
- ``read_candles``, ``write_candles``, ``Limits``: file formats, streamed within bounds, and
  their one validation module (``formats/``).
- ``to_long``, ``quote_volume``, ``on_grid``: long frames for models (``frames.py``).
- ``totals.py``: an exchange's total quote volume of one quote currency, stored as ``*/USDT``.
- ``timeframe_ms``, ``parse_time``, ``format_time``: ms-UTC time helpers (``timeframe.py``).
- ``covariates/``: series beyond the candles, each value with the time it became public, and
  ``covariate_columns``, the as-of join models read (docs/covariates.md).
"""
