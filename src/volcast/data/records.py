"""Plain JSON values from frames and figures: JSON has no NaN, so an undefined figure (a point
model's q10, a correlation of a constant) becomes null."""

from typing import Any

import pandas as pd


def finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and value != value else value


def iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def records(frame: pd.DataFrame, times: tuple[str, ...] = ("ds",)) -> list[dict[str, Any]]:
    """Rows as dicts; ms columns named in ``times`` also as ISO 8601 UTC (``time``, or
    ``<column>_time``); NaN as null."""
    out = []
    for row in frame.to_dict(orient="records"):
        for column in times:
            if column in row:
                row["time" if column == "ds" else f"{column}_time"] = iso(int(row[column]))
        out.append(finite(row))
    return out
