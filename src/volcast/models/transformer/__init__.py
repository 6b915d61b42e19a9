"""A global probabilistic transformer on the LSTM's data path: only the network differs.

The windows, the training loop (early stopping, calibration, refit, seed members), the
quantile loss, the predict path and the saved folder are the LSTM's (``volcast.models.lstm``:
``windows.py``, ``train.py``, ``forecaster.NeuralForecaster``). Here, each importing only those
above it:
- ``settings.py``: ``TransformerSettings`` (pydantic; no torch);
- ``network.py``: ``TransformerConfig`` and ``VolumeTransformer``, a patch encoder as in
  PatchTST read by one cross-attention query per forecast step (torch);
- ``forecaster.py``: ``TransformerForecaster`` (registry name ``transformer``).

This file imports nothing, so ``volcast.models.transformer.settings`` loads without torch.
"""
