"""Nowcast benchmark: the hour's final volume estimated 15, 30 and 45 minutes into it, on the
shared Binance.US 1-minute files (issue 15, item 6).

    .venv/bin/python bench/nowcast.py [--data ../shared/data] [--prior mstl] [--write-default]

Split in time: the nowcast is fitted on the first ``--fit-share`` of the days and scored on
the rest. Compared, by MAE of the hour's volume: (a) the prior, the forecast the ``--prior``
model made at the hour's open from the hourly candles before it; (b) linear extrapolation,
volume so far x 60 / minutes; (c) the nowcast from the volume so far, with (a) as its prior;
(d) the same given the last 5 minutes' volume too. Also the share of hours inside each one's
q10..q90. ``--write-default`` then fits on every day and writes the package's default
parameters (``src/volcast/live/nowcast_default.json``).
"""

import argparse
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from volcast.data.formats import read_candles
from volcast.data.frames import to_long
from volcast.data.timeframe import DAY_MS, timeframe_ms
from volcast.live import nowcast as nc
from volcast.models import create
from volcast.models.runtime import configure_process

FILES = ("BTC_USDT-1m.csv", "BTC_USD-1m.csv")
MINUTES = (15, 30, 45)
HOUR_MS = timeframe_ms("1h")
DEFAULT_PATH = Path(nc.__file__).with_name(nc.DEFAULT_FILE)


def load(data: Path) -> pd.DataFrame:
    return pd.concat([to_long(read_candles(data / "binanceus" / name), name.split("-")[0])
                      for name in FILES], ignore_index=True)


def inside(part: pd.DataFrame, low: str, high: str) -> str:
    if part[low].isna().all():
        return "-"
    return f"{((part[low] <= part['actual']) & (part['actual'] <= part[high])).mean():.0%}"


def table(scored: pd.DataFrame, title: str) -> Table:
    out = Table(title=title)
    for column in ("series", "minute", "hours", "prior", "linear", "nowcast", "vs best",
                   "+ recent", "vs best", "in q10-q90", "+ recent", "prior"):
        out.add_column(column, justify="right")
    groups = [*scored.groupby(["unique_id", "minute"]),
              *((("all", m), part) for m, part in scored.groupby("minute"))]
    for (uid, minute), part in groups:
        mae = {k: (part[k] - part["actual"]).abs().mean()
               for k in ("prior", "linear", "q50", "recent_q50")}
        best = min(mae["prior"], mae["linear"])
        out.add_row(uid, str(minute), str(len(part)), f"{mae['prior']:.2f}",
                    f"{mae['linear']:.2f}", f"{mae['q50']:.2f}",
                    f"{(mae['q50'] / best - 1) * 100:+.1f}%", f"{mae['recent_q50']:.2f}",
                    f"{(mae['recent_q50'] / best - 1) * 100:+.1f}%", inside(part, "q10", "q90"),
                    inside(part, "recent_q10", "recent_q90"),
                    inside(part, "prior_q10", "prior_q90"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--prior", default="mstl",
                        help="the model whose forecast at the hour's open is the prior")
    parser.add_argument("--fit-share", type=float, default=2 / 3)
    parser.add_argument("--write-default", action="store_true",
                        help=f"then fit on every day and write {DEFAULT_PATH.name}")
    args = parser.parse_args()
    configure_process()

    minutes = load(args.data)
    candles = nc.candles_of(minutes, HOUR_MS)
    first = int(candles["ds"].min())
    priors = nc.walk_priors(create(args.prior), candles, first + DAY_MS)
    days = (int(candles["ds"].max()) + HOUR_MS - first) // DAY_MS
    fit_days = round(days * args.fit_share)
    split = first + fit_days * DAY_MS
    nowcaster = nc.Nowcaster.fit(minutes[minutes["ds"] < split], HOUR_MS, priors)
    scored = nc.evaluate(nowcaster, minutes[minutes["ds"] >= split], priors, MINUTES)
    scored = scored.merge(priors.rename(columns={"q10": "prior_q10", "q90": "prior_q90"})
                          .drop(columns="q50"), on=["unique_id", "ds"])
    title = (f"MAE of the hour's volume; prior: {args.prior}; nowcast fitted on {fit_days} "
             f"days, scored on the {days - fit_days} after")
    Console(width=150).print(table(scored, title))
    if args.write_default:
        nc.Nowcaster.fit(minutes, HOUR_MS, priors).save(DEFAULT_PATH)
        print(f"fitted on all {days} days: wrote {DEFAULT_PATH}")


if __name__ == "__main__":
    main()
