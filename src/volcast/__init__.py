"""volcast: analyse and forecast cryptocurrency trading volume.

Packages, one per concern:
- ``volcast.data``: candles from exchanges (ccxt) and files into a DuckDB store.
- ``volcast.simulator``: a local exchange (Binance's REST dialect) for tests, demo and benchmarks.
- ``volcast.models``: forecasters behind one API; ``volcast.evaluation``: the protocol's backtest.
- ``volcast.analysis``: volume analytics; ``volcast.viz``: plots and the HTML report.
- ``volcast.web``: the dashboard and HTTP API.
"""

__version__ = "0.1.0"
