import numpy as np
import pandas as pd
import pytest

from tests.analysis.conftest import series
from volcast.analysis import analyze, to_json
from volcast.analysis.shares import overall_shares, shares


def test_shares_compare_quote_volume_not_base_units():
    # B trades 10x the coins of A at a tenth of the price: equal quote volume, half each
    a = series(np.full(24 * 14, 100.0), "A", close=50.0)
    b = series(np.full(24 * 14, 1000.0), "B", close=5.0)
    c = series(np.full(24 * 14, 200.0), "C", close=50.0)
    long = pd.concat([a, b, c], ignore_index=True)
    weekly = shares(long)
    assert len(weekly) == 2 and weekly.index[0] == pd.Timestamp("2024-01-01")
    assert weekly.loc[:, "A"].to_numpy() == pytest.approx([0.25, 0.25])
    assert weekly.loc[:, "C"].to_numpy() == pytest.approx([0.5, 0.5])
    assert overall_shares(long) == pytest.approx({"A": 0.25, "B": 0.25, "C": 0.5})


def test_a_series_missing_for_a_week_has_a_zero_share_then():
    a = series(np.full(24 * 14, 100.0), "A")
    b = series(np.full(24 * 7, 100.0), "B")
    weekly = shares(pd.concat([a, b], ignore_index=True))
    assert weekly["B"].tolist() == [0.5, 0.0]
    out = to_json(analyze(pd.concat([a, b], ignore_index=True)))
    assert out["shares"]["weekly"][1] == {"period": "2024-01-08", "A": 1.0, "B": 0.0}
