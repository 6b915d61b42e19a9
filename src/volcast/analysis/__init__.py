"""Volume analytics (issue 8): what the CLI's ``analyze``, the plots and the report show.

``analyze`` gathers every figure for each series of a long frame (and shares when there are
several); ``to_json`` turns the result into plain JSON values (times as ISO 8601 UTC).
"""

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from volcast.analysis.profile import coverage, distribution, drivers, seasonality, spikes
from volcast.analysis.shares import overall_shares, shares
from volcast.data.frames import split_series
from volcast.data.records import finite, iso


@dataclass
class SeriesAnalysis:
    unique_id: str
    coverage: dict[str, Any]
    seasonality: dict[str, Any]
    distribution: dict[str, float]
    spikes: pd.DataFrame
    drivers: pd.DataFrame
    unit: str = "base units"
    """What the volumes are counted in (BTC, USDT), for every figure shown."""


@dataclass
class Analysis:
    series: list[SeriesAnalysis]
    shares: pd.DataFrame | None = None
    overall_shares: dict[str, float] = field(default_factory=dict)


def analyze_series(uid: str, series: pd.DataFrame, tz: str = "UTC", k: float = 6.0,
                   unit: str = "base units") -> SeriesAnalysis:
    return SeriesAnalysis(uid, coverage(series), seasonality(series, tz), distribution(series),
                          spikes(series, k), drivers(series), unit)


def analyze(long: pd.DataFrame, tz: str = "UTC", k: float = 6.0, unit: str = "base",
            names: dict[str, str] | None = None) -> Analysis:
    """Every figure of each series of ``long``, whose ``y`` is in ``unit`` (base or quote
    volume; ``names``: each series' currency for it, e.g. BTC)."""
    parts = split_series(long)
    several = len(parts) > 1
    return Analysis([analyze_series(uid, s, tz, k, (names or {}).get(uid, unit))
                     for uid, s in parts.items()],
                    shares(long, unit=unit) if several else None,
                    overall_shares(long, unit) if several else {})


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (iso(v) if k == "ds" else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def to_json(analysis: Analysis, top: int = 10) -> dict[str, Any]:
    """Plain JSON values: the same figures the tables print, ``top`` spikes per series."""
    out: dict[str, Any] = {"series": []}
    for a in analysis.series:
        season = a.seasonality
        out["series"].append({
            "unique_id": a.unique_id, "unit": a.unit,
            "coverage": a.coverage | {"first": iso(a.coverage["first"]),
                                      "last": iso(a.coverage["last"])},
            "seasonality": {"tz": season["tz"], "explained": season["explained"],
                            **{k: season[k].to_dict(orient="records")
                               for k in ("by_hour", "by_weekday", "hour_of_week")}},
            "distribution": a.distribution,
            "spikes": {"count": len(a.spikes), "largest": _records(a.spikes.head(top))},
            "drivers": _records(a.drivers),
        })
    if analysis.shares is not None:
        weekly = analysis.shares.reset_index()
        weekly["period"] = weekly["period"].dt.strftime("%Y-%m-%d")
        out["shares"] = {"unit": "quote volume (volume x typical price)",
                         "overall": analysis.overall_shares,
                         "weekly": weekly.to_dict(orient="records")}
    return finite(out)
