"""The neural models' settings, apart from the networks so the CLI can show them without torch.

``NeuralSettings`` holds what every network on the neural path shares (the windows, their
inputs, the training loop, the quantiles); ``LSTMSettings`` adds the LSTM's own size.
Process-wide choices (CPU threads, the allocator) are not settings of a model: see
``volcast.models.runtime.configure_process``.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, field_validator

from volcast.models.base import ModelSettings

FEATURES = ("volume", "range", "abs_return", "trades", "calendar")
CANDLE_COLUMNS = frozenset({"unique_id", "ds", "y", "volume", "open", "high", "low", "close",
                            "trades", "missing"})
"""Columns of a long frame (and of ``frames.on_grid``'s grid) that are no covariate."""
MAX_COVARIATES = 16

SCALE_RANGE = (0.05, 20.0)
"""Calibration scales (``train.fit_scales``) lie in this range; a saved model's must too."""
MIN_SERIES_WINDOWS = 100
"""Fewest held-out windows a series needs for calibration scales of its own (``calibration =
"series"``); one with fewer keeps the pooled ones. A q10 or q90 scale is a 10% tail of the
series' ratios: from a hundred windows (neighbours nearly repeat each other) that tail rests on
a handful of independent moves, and below it the series' own estimate is noisier than the
pooled one is biased. It also bounds a saved model's per-series scales: at most
``val_windows // MIN_SERIES_WINDOWS`` series can hold that many held-out windows."""
MAX_UID_CHARS = 200
"""Longest series name (``unique_id``) a saved model's per-series scales may carry."""

Feature = Literal["volume", "range", "abs_return", "trades", "calendar"]
Covariate = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(:[A-Za-z0-9_]+)?$",
                                            max_length=40)]
"""A column name: lower case, or a source and its series (``fred:DGS10``)."""


class NeuralSettings(ModelSettings):
    """What every network on the neural path shares: windows, inputs, training, quantiles."""

    lookback: int = Field(168, ge=24, le=4096, description="past candles the model reads")
    horizon: int = Field(24, ge=1, le=1024, description="candles forecast at once")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    epochs: int = Field(30, ge=1, le=1000)
    batch_size: int = Field(256, ge=8, le=8192)
    micro_batch: int | None = Field(None, ge=8, le=8192, description="windows run through the "
                                    "network at once in training, the batch's gradient summed "
                                    "over them: less memory (it follows this, not the batch), "
                                    "a little slower, the same up to rounding (default: the "
                                    "whole batch)")
    shards: int = Field(1, ge=1, le=64, description="parts each training batch is cut into, "
                        "each part's gradient computed on its own and summed in order: with "
                        "--ray, the parts train on that many Ray workers at once (data "
                        "parallel); the weights depend on this number, not on where the parts "
                        "ran")
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)
    patience: int = Field(5, ge=1, le=100, description="epochs without improvement before "
                                                     "early stopping")
    quantiles: list[float] = Field([0.1, 0.5, 0.9], min_length=1, max_length=99,
                                   description="forecast quantiles, named q1 .. q99")
    features: list[Feature] = Field(list(FEATURES), min_length=1)
    covariates: list[Covariate] = Field([], max_length=MAX_COVARIATES, description="past-"
                                        "observed drivers, extra columns of the candles by "
                                        "name (e.g. fear_greed, vix)")
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5, description="newest share of the "
                                                                "training windows kept for "
                                                                "validation")
    val_windows: int = Field(8192, ge=64, le=1_000_000, description="most validation windows "
                             "kept in all, spread evenly over the series and their validation "
                             "time: training memory stays bounded however many series")
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
    calibration: Literal["series", "pooled"] = Field("series", description="interval "
                                                     "calibration: 'series' scales each "
                                                     "series' quantiles by its own held-out "
                                                     "windows (one pooled calibration is too "
                                                     "wide on calm series and too narrow on "
                                                     "wild ones), the pooled scales for a "
                                                     "series with fewer than "
                                                     f"{MIN_SERIES_WINDOWS} of them or unseen "
                                                     "in training; 'pooled': one calibration "
                                                     "for every series. The median is the "
                                                     "same either way")

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

    @field_validator("covariates")
    @classmethod
    def _not_a_candle_column(cls, value: list[str]) -> list[str]:
        """Sorted, so that the order they were named in does not make another model."""
        taken = sorted(CANDLE_COLUMNS & set(value))
        if taken:
            raise ValueError(f"'{taken[0]}' is a column of the candles, not a covariate")
        return sorted(set(value))


class LSTMSettings(NeuralSettings):
    """The shared settings and the LSTM's size."""

    hidden_size: int = Field(64, ge=4, le=1024)
    layers: int = Field(1, ge=1, le=4)
    retired: ClassVar[frozenset[str]] = frozenset({"threads"})  # 0.1.0: now configure_process
