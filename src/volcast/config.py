"""Typed settings and the one place that turns defaults, a TOML file and CLI flags into objects.

Precedence: CLI flag > ``--config`` TOML file > defaults. Every value is validated by pydantic and
every problem becomes one line naming the setting and what is allowed.
"""

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from volcast.errors import VolcastError

MODEL_TABLES = ("lstm", "ensemble", "mstl", "seasonal_naive_24", "seasonal_naive_168",
                "hour_of_day_median_7d", "hour_of_day_median_28d", "hour_of_week_median_4w",
                "transformer")
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


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def duration_s(text: str) -> float:
    """"90s", "15m", "6h", "1d", "1w" -> seconds; one line naming the value otherwise."""
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a duration such as 30m, 6h, 1d or 1w")
    return float(match.group(1)) * _SECONDS[match.group(2)]


class WatchSettings(BaseModel):
    """One ``[[watch]]`` table: series of one exchange that `volcast serve` backfills and then
    keeps up to date, candle by candle: its ``symbols``, and/or its ``top`` spot markets quoted
    in ``quote`` by 24 h quote volume (chosen when the exchange is opened, and again on each
    reload). Symbols and timeframes are checked against the exchange when the watch-list is
    applied (``volcast.live``), not here."""

    model_config = STRICT

    exchange: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="ccxt exchange id")
    symbols: list[str] = Field(default_factory=list, max_length=1000,
                               description="ccxt symbols")
    top: int | None = Field(None, ge=1, le=5000, description="also the exchange's top N spot "
                            "markets by 24 h quote volume (with quote)")
    quote: str | None = Field(None, pattern=r"^[A-Za-z0-9]{1,16}$", description="top: the "
                              "quote currency, e.g. USDT")
    timeframes: list[str] = Field(default_factory=lambda: ["1h"], min_length=1, max_length=16)
    since: str | None = Field(None, description="backfill start (ISO date or time, UTC); "
                              "without it a new series starts with the last day")
    url: str | None = Field(None, pattern=r"^https?://", description="REST base URL instead "
                            "of the exchange's (simulator, proxy, testnet)")

    @model_validator(mode="after")
    def _markets(self) -> "WatchSettings":
        """Something to watch, and top with its quote (volumes in different currencies do
        not compare)."""
        if (self.top is None) != (self.quote is None):
            raise ValueError("top and quote go together, e.g. top = 200 and quote = \"USDT\"")
        if not self.symbols and self.top is None:
            raise ValueError("give symbols, or top and quote")
        self.quote = self.quote.upper() if self.quote else None
        return self


AlertKind = Literal["q90_above", "exceed_probability", "above_forecast", "stale"]


class AlertRule(BaseModel):
    """One ``[[alert]]`` table (or a rule made through the API). ``series`` is
    ``exchange:symbol:timeframe``, or an exchange id for the total of its watched series (of
    ``timeframe`` when it watches several). What ``threshold`` means depends on ``kind``:

    - ``q90_above``: volume (in ``unit``); fires when the q90 of one of the next ``horizon``
      candles (``aggregate = "max"``) or of their sum (``"sum"``) is above it;
    - ``exceed_probability``: a probability; fires when the chance that volume exceeds
      ``level`` in one of the next ``horizon`` candles is above it;
    - ``above_forecast``: a factor k; fires when a closed candle's volume is above k x the q90
      forecast for it before it opened (stress);
    - ``stale``: candle lengths; fires when no new candle came for that long, or when fetches
      have failed for ``error_minutes``.

    Fires after ``debounce`` consecutive breaching readings, resolves after ``resolve_after``
    consecutive clear ones, once per episode."""

    model_config = STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    series: str = Field(min_length=1, max_length=200)
    kind: AlertKind
    threshold: float = Field(ge=0)
    level: float | None = Field(None, ge=0, description="exceed_probability: the volume level")
    horizon: int = Field(1, ge=1, le=1024, description="candles ahead")
    aggregate: Literal["max", "sum"] = "max"
    unit: Literal["base", "quote"] = "base"
    timeframe: str | None = Field(None, description="an exchange total's timeframe")
    debounce: int = Field(1, ge=1, le=1000, description="breaching readings before it fires")
    resolve_after: int = Field(1, ge=1, le=1000, description="clear readings before it resolves")
    error_minutes: float | None = Field(None, gt=0, le=10_080, description="stale: minutes of "
                                        "failing fetches that count as stale too")
    webhook: str | None = Field(None, pattern=r"^https?://", description="where firings and "
                                "resolutions are POSTed")
    format: Literal["json", "slack"] = Field("json", description="webhook payload: volcast's "
                                             "JSON, or Slack's {\"text\": ...}")

class TrainSchedule(BaseModel):
    """``[train]``: `volcast serve` retrains one global model per watched timeframe every
    ``every`` (off without it); the new model serves only when its validation score over the
    newest ``validation_days`` is no worse than the serving one's."""

    model_config = STRICT

    every: str | None = Field(None, description="how often, e.g. 1d or 12h")
    model: str = Field("lstm", description="the model trained")
    validation_days: float = Field(7, gt=0, le=365)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None:
            duration_s(value)
        return value


class LiveSettings(BaseModel):
    """``[live]``: how `volcast serve` follows its watch-list."""

    model_config = STRICT

    max_sleep_s: float = Field(30, gt=0, le=3600, description="longest wait between two looks "
                               "at an exchange's clock")
    history_candles: int = Field(168, ge=1, le=10_000, description="candles each series shows")
    nowcast: bool = Field(True, description="nowcast each open candle every minute")


class CovariateSettings(BaseModel):
    """``[covariates]``: what covariate downloads need besides [fetch]'s retry rules."""

    model_config = STRICT

    fred_api_key: SecretStr | None = Field(None, description="FRED's API key, when "
                                           "$FRED_API_KEY is not set; never printed or logged")


class RaySettings(BaseModel):
    """``[ray]``: run work over many series (per-market downloads, backtests, forecasts) as Ray
    tasks (docs/scale.md): when ``enabled`` (``--ray``), or, unless it is false (``--no-ray``),
    when an ``address`` is given. Without an address volcast starts a Ray cluster of
    ``workers`` processes on this machine for the command."""

    model_config = STRICT

    enabled: bool | None = Field(None, description="run many-series work as Ray tasks "
                                 "(--ray/--no-ray) [default: when an address is given]")
    address: str | None = Field(None, pattern=r"^(auto|ray://[^\s/:]+:[0-9]{1,5})$",
                                description="a running cluster: auto (found on this machine) "
                                "or ray://HOST:PORT (its Ray client port)")
    workers: int | None = Field(None, ge=1, le=1024, description="worker processes of the "
                                "local cluster (--ray-workers) [default: every CPU]")

    @model_validator(mode="after")
    def _one_size(self) -> "RaySettings":
        """A running cluster has its own size; only a local one is sized here."""
        if self.address is not None and self.workers is not None:
            raise ValueError(f"workers sizes the local cluster volcast starts; the cluster at "
                             f"{self.address} has its own workers")
        return self

    @property
    def used(self) -> bool:
        return self.address is not None if self.enabled is None else self.enabled


class Settings(BaseModel):
    """Everything a config file may set, one section per concern."""

    model_config = STRICT

    fetch: FetchSettings = Field(default_factory=FetchSettings)
    model: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[model.NAME] tables: settings of each model, "
        "validated by the model itself")
    backtest: "BacktestSettings" = Field(default_factory=lambda: BacktestSettings())
    jobs: JobSettings = Field(default_factory=JobSettings)
    watch: list[WatchSettings] = Field(default_factory=list, description="[[watch]] tables")
    alert: list[AlertRule] = Field(default_factory=list, description="[[alert]] tables")
    train: TrainSchedule = Field(default_factory=TrainSchedule)
    live: LiveSettings = Field(default_factory=LiveSettings)
    covariates: CovariateSettings = Field(default_factory=CovariateSettings)
    ray: RaySettings = Field(default_factory=RaySettings)


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
