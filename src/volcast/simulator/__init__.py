"""A local exchange for tests, the offline demo and benchmarks.

``volcast simulate-exchange`` serves candle files (laid out ``<exchange>/<BASE>_<QUOTE>-<tf>.csv``
as in shared/data) over HTTP on 127.0.0.1 in Binance's (or Kraken's) public REST dialect, so the
real ccxt client pointed at it with ``--exchange-url`` downloads them as from the real exchange.
It can inject the faults real exchanges produce (429 with Retry-After, 418, 5xx, stalls,
truncated bodies) and keeps an exchange clock, so the newest candle can still be open.
"""

from volcast.simulator.server import SimulatorConfig, running, serve_forever

__all__ = ["SimulatorConfig", "running", "serve_forever"]
