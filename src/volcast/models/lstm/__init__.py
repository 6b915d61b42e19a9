"""The core model: a global probabilistic LSTM that forecasts the q10/q50/q90 of volume.

Read in this order, each module importing only those above it:
- ``settings.py``: ``LSTMSettings`` (pydantic; no torch, so the CLI builds its flags from it);
- ``windows.py``: series -> normalised windows (past, known future, target), the time split
  and batches (numpy);
- ``network.py``: ``NetConfig``, ``VolumeLSTM`` and the pinball loss (torch);
- ``train.py``: the training loop: early stopping, calibration, refit, seed members;
- ``forecaster.py``: ``LSTMForecaster``, the model behind the ``Forecaster`` API (registry
  name ``lstm``).

This file imports nothing, so ``volcast.models.lstm.settings`` loads without torch.
"""
