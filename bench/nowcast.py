"""Nowcast benchmark: the hour's final volume estimated 15, 30 and 45 minutes into it, on the
shared Binance.US 1-minute files (issue 15, item 6).

    .venv/bin/python bench/nowcast.py [--data ../shared/data] [--prior hour_of_day_median_7d]

Split in time: the nowcast is fitted on the first ``--fit-share`` of the days and scored on
the rest. Compared, by MAE of the hour's volume: (a) the prior, the forecast the ``--prior``
model made at the hour's open from the hourly candles before it; (b) linear extrapolation,
volume so far x 60 / minutes; (c) the nowcast, with (a) as its prior. Also the share of hours
inside the nowcast's q10..q90 (and the prior's, when the model has quantiles).
``--write-default`` fits on every day and writes the package's default parameters.
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


def table(scored: pd.DataFrame, title: str) -> Table:
    out = Table(title=title)
    for column in ("series", "minute", "hours", "MAE prior", "MAE linear", "MAE nowcast",
                   "vs best", "q10-q90 nowcast", "q10-q90 prior"):
        out.add_column(column, justify="right")
    groups = [*scored.groupby(["unique_id", "minute"]),
              *((("all", m), part) for m, part in scored.groupby("minute"))]
    for (uid, minute), part in groups:
        mae = {k: (part[k] - part["actual"]).abs().mean() for k in ("prior", "linear", "q50")}
        inside = ((part["q10"] <= part["actual"]) & (part["actual"] <= part["q90"])).mean()
        prior_inside = ((part["prior_q10"] <= part["actual"])
                        & (part["actual"] <= part["prior_q90"])).mean()
        best = min(mae["prior"], mae["linear"])
        out.add_row(uid, str(minute), str(len(part)), f"{mae['prior']:.2f}",
                    f"{mae['linear']:.2f}", f"{mae['q50']:.2f}",
                    f"{(mae['q50'] / best - 1) * 100:+.1f}%", f"{inside:.0%}",
                    "-" if part["prior_q10"].isna().all() else f"{prior_inside:.0%}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--prior", default="hour_of_day_median_7d",
                        help="the model whose forecast at the hour's open is the prior")
    parser.add_argument("--fit-share", type=float, default=2 / 3)
    parser.add_argument("--write-default", action="store_true",
                        help=f"fit on every day and write {DEFAULT_PATH.name}")
    args = parser.parse_args()
    configure_process()

    minutes = load(args.data)
    candles = nc.candles_of(minutes, HOUR_MS)
    first = int(candles["ds"].min())
    priors = nc.walk_priors(create(args.prior), candles, first + DAY_MS)
    if args.write_default:
        nc.Nowcaster.fit(minutes, HOUR_MS, priors).save(DEFAULT_PATH)
        print(f"wrote {DEFAULT_PATH}")
        return
    days = (int(candles["ds"].max()) + HOUR_MS - first) // DAY_MS
    split = first + round(days * args.fit_share) * DAY_MS
    nowcaster = nc.Nowcaster.fit(minutes[minutes["ds"] < split], HOUR_MS, priors)
    scored = nc.evaluate(nowcaster, minutes[minutes["ds"] >= split], priors, MINUTES)
    scored = scored.merge(priors.rename(columns={"q10": "prior_q10", "q90": "prior_q90"})
                          .drop(columns="q50"), on=["unique_id", "ds"])
    Console().print(table(scored, f"nowcast of the hour's volume; prior: {args.prior}; fit on "
                                  f"{round(days * args.fit_share)} days, scored on the "
                                  f"{days - round(days * args.fit_share)} after"))


if __name__ == "__main__":
    main()
