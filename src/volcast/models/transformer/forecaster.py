"""The transformer behind the Forecaster API: the neural path of ``NeuralForecaster`` (windows,
training, calibration, predict, saved folder) with ``VolumeTransformer`` as its network."""

from typing import TYPE_CHECKING

from volcast.models.lstm.forecaster import NeuralForecaster
from volcast.models.transformer.settings import TransformerSettings

if TYPE_CHECKING:
    from volcast.models.lstm.network import QuantileNet


class TransformerForecaster(NeuralForecaster):
    """A global probabilistic transformer; see ``volcast.models.transformer``."""

    name = "transformer"
    title = "transformer"
    Settings = TransformerSettings

    @staticmethod
    def network() -> "type[QuantileNet]":
        from volcast.models.transformer.network import VolumeTransformer

        return VolumeTransformer
