"""The LSTM's settings, apart from the network so the CLI can show them without importing torch.

Process-wide choices (CPU threads, the allocator) are not settings of a model: see
``volcast.models.runtime.configure_process``.
"""

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from volcast.models.base import ModelSettings

FEATURES = ("volume", "range", "abs_return", "trades", "calendar")


SCALE_RANGE = (0.05, 20.0)
"""Calibration scales (``train.fit_scales``) lie in this range; a saved model's must too."""

Feature = Literal["volume", "range", "abs_return", "trades", "calendar"]


class LSTMSettings(ModelSettings):
    lookback: int = Field(168, ge=24, le=4096, description="past candles the model reads")
    horizon: int = Field(24, ge=1, le=1024, description="candles forecast at once")
    hidden_size: int = Field(64, ge=4, le=1024)
    layers: int = Field(1, ge=1, le=4)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: int = Field(30, ge=1, le=1000)
    batch_size: int = Field(256, ge=8, le=8192)
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)
    patience: int = Field(5, ge=1, le=100, description="epochs without improvement before "
                                                     "early stopping")
    quantiles: list[float] = Field([0.1, 0.5, 0.9], min_length=1, max_length=99,
                                   description="forecast quantiles, named q1 .. q99")
    features: list[Feature] = Field(list(FEATURES), min_length=1)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5, description="newest share of the "
                                                                "training windows kept for "
                                                                "validation")
    train_days: int | None = Field(365, ge=7, le=36500, description="train on the newest "
                                   "days of each series only (a large number: all)")
    stride: int = Field(1, ge=1, le=168, description="use every n-th window per epoch, from a "
                        "random offset (neighbouring windows nearly repeat each other)")
    refit: bool = Field(True, description="after early stopping, train again on every window "
                        "(validation included) for the best number of epochs")
    members: int = Field(1, ge=1, le=16, description="networks trained with seeds seed, "
                         "seed + 1, ... whose quantiles are averaged")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="random seed (members: seed, seed + "
                      "1, ...)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    retired: ClassVar[frozenset[str]] = frozenset({"threads"})  # 0.1.0: now configure_process

    @field_validator("quantiles")
    @classmethod
    def _median_and_order(cls, value: list[float]) -> list[float]:
        if any(not 0 < q < 1 for q in value) or 0.5 not in value:
            raise ValueError("quantiles must lie strictly between 0 and 1 and include 0.5")
        return sorted(set(value))

    @field_validator("features")
    @classmethod
    def _volume_first(cls, value: list[str]) -> list[str]:
        if "volume" not in value:
            raise ValueError("features must include volume")
        return [f for f in FEATURES if f in value]
