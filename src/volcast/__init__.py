"""volcast: analyse and forecast cryptocurrency trading volume.

Packages, one per concern:
- ``volcast.data``: candles from exchanges (ccxt) and files into a DuckDB store.
- ``volcast.simulator``: a local exchange (Binance's REST dialect) for tests, demo and benchmarks.
"""

__version__ = "0.1.0"
