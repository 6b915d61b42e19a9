import numpy as np
import pandas as pd
import pytest

from tests.analysis.conftest import HOUR, MONDAY, calendar_volume, series


def predictions(offset: float, quantiles: bool, origins: int = 4, horizon: int = 24
                ) -> pd.DataFrame:
    """Protocol rows where y_pred misses y_true by ``offset`` x step; q10/q90 at -/+15."""
    rows = []
    for o in range(origins):
        origin = MONDAY + (o * horizon + 24 * 14) * HOUR
        for step in range(1, horizon + 1):
            y = 100.0 + step
            pred = y - offset * step
            rows.append({"origin": origin, "timestamp": origin + (step - 1) * HOUR,
                         "step": step, "y_true": y, "y_pred": pred,
                         "q10": pred - 15 if quantiles else np.nan,
                         "q90": pred + 15 if quantiles else np.nan})
    return pd.DataFrame(rows)


@pytest.fixture
def runs() -> dict[str, pd.DataFrame]:
    return {"good": predictions(0.5, True), "naive": predictions(1.0, False)}


@pytest.fixture
def history() -> pd.DataFrame:
    return series(calendar_volume(6, {14: 3.0}, weekend_factor=0.5), "BTC")
