"""Walk-forward backtests of any Forecaster, exactly as shared/bench/PROTOCOL.md prescribes.

Nothing in ``models/`` imports this package: the backtest drives a model from outside.
Public: ``backtest`` and ``BacktestResult`` (``backtest.py``), ``score`` and ``STEPS``
(``scores.py``), ``reconcile`` and ``backtest_hierarchy`` (``hierarchy.py``: forecasts of an
exchange's total and of its markets that add up).
"""
