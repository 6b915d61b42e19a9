"""The application layer: what volcast does for a user, apart from how it is asked. The CLI,
the web API, the report and the demo call this package for every whole flow (load candles,
pick models, train, backtest, forecast, overview), so they cannot drift apart.

- ``core.py``: ``Workspace``, one store + one models folder + the settings, and its flows;
- ``flows.py``: the same flows on long frames from any source (what a backtest compares, how
  config tables meet flags);
- ``layout.py``: where trained models and stored backtests live on disk;
- ``sources.py``: where a flow's candles come from (files or the store), and time windows;
- ``executor.py``: where work over many series runs: here, or as Ray tasks (``--ray``);
- ``batch.py``: backtests (one shared model) and forecasts of many series on an executor;
- ``downloads.py``: per-market downloads as tasks on an executor (``fetch --ray``).
"""

from volcast.workspace.core import Workspace

__all__ = ["Workspace"]
