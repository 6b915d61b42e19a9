"""Candles in, candles out: exchanges through ccxt, files in common formats, one DuckDB store.

Public names:
- ``CandleStore``, ``SeriesKey``: the store (``store.py``).
- ``ExchangeClient``, ``RetryPolicy``: the ccxt wrapper (``exchange.py``, the one ccxt import).
- ``sync_many``, ``follow``: the resumable pagination loop (``sync.py``).
- ``read_candles``, ``write_candles``: file formats (``formats/``).
- ``timeframe_ms``, ``parse_time``, ``format_time``: ms-UTC time helpers (``timeframe.py``).
"""
