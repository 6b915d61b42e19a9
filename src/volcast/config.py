"""Typed settings and the one place that turns defaults, a TOML file and CLI flags into objects.

Precedence: CLI flag > ``--config`` TOML file > defaults. Every value is validated by pydantic and
every problem becomes one line naming the setting and what is allowed.
"""

import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from volcast.errors import VolcastError

MODEL_TABLES = ("lstm", "ensemble", "mstl", "seasonal_naive_24", "seasonal_naive_168",
                "hour_of_day_median_7d", "hour_of_day_median_28d", "hour_of_week_median_4w")
"""The ``[model.NAME]`` tables a config file may hold: every registered model. config.py sits
below the models and cannot ask their registry; tests/models/test_conformance.py keeps this
equal to ``models.MODEL_NAMES``."""
STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
"""Every settings section: unknown keys and NaN or infinite numbers are errors."""


class FetchSettings(BaseModel):
    """How downloads talk to an exchange."""

    model_config = STRICT

    retries: int = Field(8, ge=0, le=100, description="retries per request before giving up")
    backoff_s: float = Field(0.5, gt=0, le=600, description="first retry delay, doubled each time")
    backoff_max_s: float = Field(30.0, gt=0, le=3600, description="longest retry delay")
    timeout_ms: int = Field(10_000, ge=100, le=600_000, description="per-request timeout")
    rate_limit: bool = Field(True, description="ccxt's built-in rate limiter")
    poll_s: float = Field(30.0, gt=0, le=86_400, description="--follow: seconds between polls")


class BacktestSettings(BaseModel):
    """The protocol's knobs (shared/bench/PROTOCOL.md); defaults are the protocol's."""

    model_config = STRICT

    horizon: int = Field(24, ge=1, le=1024, description="candles forecast from each origin")
    test_days: float = Field(60, gt=0, le=3650, description="test period when no cutoff")


class JobSettings(BaseModel):
    """Caps on what a web job (``volcast serve``) may ask for, so that each job's memory and
    time are bounded; the command line is not capped. A job beyond a cap is refused when it is
    submitted (HTTP 422, naming the setting and the cap); the operator raises a cap in the
    ``[jobs]`` table of ``volcast serve --config``. Each ``max_NAME`` caps the model setting
    ``NAME`` of the models that have it (``train_days`` left empty, meaning all, is over any
    cap)."""

    model_config = STRICT

    max_epochs: int = Field(200, ge=1, le=1000, description="LSTM epochs per phase")
    max_hidden_size: int = Field(128, ge=4, le=1024, description="LSTM hidden units")
    max_layers: int = Field(2, ge=1, le=4, description="LSTM layers")
    max_lookback: int = Field(720, ge=24, le=4096, description="candles the LSTM reads")
    max_batch_size: int = Field(1024, ge=8, le=8192, description="windows per batch")
    max_members: int = Field(4, ge=1, le=16, description="LSTM seed members")
    max_train_days: int = Field(730, ge=7, le=36500, description="days of history per series")
    max_gbm_rounds: int = Field(1000, ge=10, le=5000, description="ensemble boosting rounds")
    max_train_candles: int = Field(200_000, ge=1_000, le=10_000_000, description="candles of "
                                   "history per series (train_days on the job's timeframe)")
    max_series: int = Field(10, ge=1, le=1000, description="series a global model of a job "
                            "learns from (the job's own first, then the store's order)")
    max_batch_cost: float = Field(4.0, ge=1.0, le=10_000.0, description="one training "
                                  "batch's time relative to the default LSTM settings' batch "
                                  "(batch_size x lookback x hidden_size^2 x layers): a cancel "
                                  "waits for the batch in flight")


class Settings(BaseModel):
    """Everything a config file may set, one section per concern."""

    model_config = STRICT

    fetch: FetchSettings = Field(default_factory=FetchSettings)
    model: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[model.NAME] tables: settings of each model, "
        "validated by the model itself")
    backtest: "BacktestSettings" = Field(default_factory=lambda: BacktestSettings())
    jobs: JobSettings = Field(default_factory=JobSettings)


def describe(error: ValidationError, prefix: str = "") -> str:
    """pydantic's first complaint as one line naming the setting."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"setting '{prefix}{where}': {first['msg']} (got {first.get('input')!r})"


def load_settings(path: Path | None = None, **overrides: dict[str, Any]) -> Settings:
    """Defaults, then the TOML file, then non-None CLI values given per section
    (``model={"lstm": {...}}`` for a model's settings)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise VolcastError(f"no such config file: {path}") from None
        except OSError as exc:
            raise VolcastError(f"cannot read config file {path}: {exc.strerror}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise VolcastError(f"{path}: not valid TOML ({exc})") from None
        tables = data.get("model")
        unknown = sorted(set(tables) - set(MODEL_TABLES)) if isinstance(tables, dict) else []
        if unknown:
            raise VolcastError(f"{path}: unknown table [model.{unknown[0]}]; the models are "
                               f"{', '.join(MODEL_TABLES)}")
    for section, values in overrides.items():
        data[section] = merge(data.get(section, {}), values)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise VolcastError(describe(exc)) from None


def merge(base: Any, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` over ``base``, nested tables merged, None values (flags not given) skipped."""
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in given.items():
        if isinstance(value, dict):
            merged[key] = merge(merged.get(key, {}), value)
        elif value is not None:
            merged[key] = value
    return merged


def db_path(option: Path | None) -> Path:
    """--db, else $VOLCAST_DB, else volcast.duckdb in the user's data directory."""
    if option is not None:
        return option
    if os.environ.get("VOLCAST_DB"):
        return Path(os.environ["VOLCAST_DB"])
    return platformdirs.user_data_path("volcast") / "volcast.duckdb"
