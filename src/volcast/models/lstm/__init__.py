"""The core model, a global probabilistic LSTM that forecasts the q10/q50/q90 of volume, and
the neural path it shares with the transformer (``models/transformer``): only the network
differs between them.

Read in this order, each module importing only those above it:
- ``settings.py``: ``NeuralSettings`` (shared: windows, inputs, covariates, training) and
  ``LSTMSettings`` (pydantic; no torch, so the CLI builds its flags from it);
- ``windows.py``: series -> normalised windows (past, known future, target), the time split
  (validation capped at ``val_windows``) and batches (numpy);
- ``inputs.py``: ``Inputs``, a trained model's candles -> arrays and windows: each series'
  newest window, or the window at every origin of a backtest cut from one grid;
- ``network.py``: ``QuantileNet`` (what every network is), the pinball loss, members;
  ``NetConfig`` and ``VolumeLSTM`` (torch);
- ``train.py``: the training loop of any ``QuantileNet``: early stopping, calibration, refit,
  seed members;
- ``forecaster.py``: ``NeuralForecaster`` (the ``Forecaster`` API of every network) and
  ``LSTMForecaster`` (registry name ``lstm``).

This file imports nothing, so ``volcast.models.lstm.settings`` loads without torch.
"""
