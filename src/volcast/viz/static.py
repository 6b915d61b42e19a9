"""Charts as PNG images with matplotlib, through its object API (no pyplot state, no display)."""

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from volcast.viz.spec import HEATMAP_COLOURS, Chart, Trace


def _draw(ax: Axes, trace: Trace, colour: str, slot: tuple[int, int]) -> object:
    style = "--" if trace.dashed else "-"
    if trace.kind == "line":
        return ax.plot(trace.x, trace.y, style, color=colour, label=trace.name, linewidth=1.2)
    if trace.kind == "points":
        return ax.scatter(trace.x, trace.y, color=colour, label=trace.name, s=22, zorder=3)
    if trace.kind == "band":
        return ax.fill_between(trace.x, trace.y, trace.upper, color=colour, alpha=0.25,
                               label=trace.name, linewidth=0)
    if trace.kind == "bar":
        number, count = slot
        width = 0.8 / count
        positions = np.arange(len(trace.x)) - 0.4 + width * (number + 0.5)
        ax.set_xticks(np.arange(len(trace.x)), [str(v) for v in trace.x], rotation=30,
                      ha="right")
        return ax.bar(positions, trace.y, width, color=colour, label=trace.name)
    image = ax.imshow(trace.z, aspect="auto", cmap=HEATMAP_COLOURS, origin="upper")
    ax.set_xticks(np.arange(len(trace.x)), [str(v) for v in trace.x], fontsize=7)
    ax.set_yticks(np.arange(len(trace.y)), [str(v) for v in trace.y])
    return image


def save_png(chart: Chart, path: Path) -> None:
    fig = Figure(figsize=(11, 5), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    bars = [t for t in chart.traces if t.kind == "bar"]
    for trace, colour in zip(chart.traces, chart.colours(), strict=True):
        drawn = _draw(ax, trace, colour, (bars.index(trace) if trace in bars else 0,
                                          len(bars)))
        if trace.kind == "heatmap":
            fig.colorbar(drawn, ax=ax, label=chart.z_label)
    ax.set_title(chart.title)
    ax.set_xlabel(chart.x_label)
    ax.set_ylabel(chart.y_label)
    if any(t.kind != "heatmap" for t in chart.traces):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.savefig(path)
