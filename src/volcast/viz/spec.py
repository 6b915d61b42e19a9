"""A chart described once, drawn by two renderers: matplotlib (PNG) and plotly (HTML).

The chart builders (``charts.py``) decide what to show; ``static.py`` and ``interactive.py``
only decide how, so a PNG and an HTML of the same kind always show the same numbers.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")
"""Colour-blind-safe palette (Okabe & Ito), in the order traces take it."""
HEATMAP_COLOURS = "cividis"
"""Perceptually uniform and readable with any colour vision."""


@dataclass
class Trace:
    """One layer. ``band``: ``y`` is the lower edge, ``upper`` the upper. ``heatmap``: ``z``
    rows follow ``y`` (labels), columns follow ``x`` (labels)."""

    kind: Literal["line", "points", "band", "bar", "heatmap"]
    name: str
    x: Sequence[Any]
    y: Sequence[Any]
    upper: Sequence[float] | None = None
    z: np.ndarray | None = None
    color: str | None = None
    dashed: bool = False


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    traces: list[Trace] = field(default_factory=list)
    z_label: str = ""

    def colours(self) -> list[str]:
        """Each trace's colour: its own, else the next of the palette."""
        out, free = [], iter(OKABE_ITO * 4)
        for trace in self.traces:
            out.append(trace.color or next(free))
        return out
