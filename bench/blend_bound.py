"""How far could blending the LSTM with the best reference model go on BTC/USDT? A diagnostic,
not a model: the blend weights are chosen on the test days, which the protocol forbids for a
forecaster, so the best figure here is an upper bound for any LSTM + reference blend.

    .venv/bin/python bench/blend_bound.py [--data ../shared/data] [--pair BTC]

The LSTM is trained as bench/forecast.py trains it (global, with ETH/USDT; protocol defaults).
"""

import argparse
from pathlib import Path

import numpy as np
from forecast import load

from volcast.evaluation.backtest import backtest
from volcast.models import create
from volcast.models.runtime import configure_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--pair", default="BTC")
    parser.add_argument("--reference", default="hour_of_week_median_4w")
    args = parser.parse_args()
    configure_process()
    other = "ETH" if args.pair == "BTC" else "BTC"
    target, extra = load(args.data, args.pair), load(args.data, other)
    lstm = backtest(create("lstm"), target, extra=extra).predictions
    ref = backtest(create(args.reference), target).predictions
    scored = lstm["y_true"].notna().to_numpy()
    y = lstm["y_true"].to_numpy()[scored]
    a, b = lstm["y_pred"].to_numpy()[scored], ref["y_pred"].to_numpy()[scored]
    floor = np.abs(y - b).mean()
    print(f"{args.pair}: MAE vs {args.reference} ({floor:,.1f})")
    for w in (1.0, 0.9, 0.8, 0.7, 0.6, 0.5):
        print(f"  {w:.1f} x LSTM + {1 - w:.1f} x reference: "
              f"{np.abs(y - (w * a + (1 - w) * b)).mean() / floor - 1:+.2%}")
    for s in (0.9, 0.95, 1.05, 1.1):
        print(f"  LSTM median x {s:.2f}: {np.abs(y - s * a).mean() / floor - 1:+.2%}")


if __name__ == "__main__":
    main()
