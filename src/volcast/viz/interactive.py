"""Charts as interactive plotly figures: one HTML file each, or a div in the report."""

from pathlib import Path

import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from volcast.viz.spec import HEATMAP_COLOURS, Chart, Trace


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _traces(trace: Trace, colour: str) -> list[BaseTraceType]:
    line = {"color": colour, "dash": "dash" if trace.dashed else "solid", "width": 1.5}
    if trace.kind == "line":
        return [go.Scatter(x=list(trace.x), y=list(trace.y), mode="lines", name=trace.name,
                           line=line)]
    if trace.kind == "points":
        return [go.Scatter(x=list(trace.x), y=list(trace.y), mode="markers", name=trace.name,
                           marker={"color": colour, "size": 7})]
    if trace.kind == "band":
        return [go.Scatter(x=list(trace.x), y=list(trace.y), mode="lines", line={"width": 0},
                           showlegend=False, hoverinfo="skip", name=trace.name),
                go.Scatter(x=list(trace.x), y=list(trace.upper or []), mode="lines",
                           line={"width": 0}, fill="tonexty", fillcolor=_rgba(colour, 0.25),
                           name=trace.name)]
    if trace.kind == "bar":
        return [go.Bar(x=[str(v) for v in trace.x], y=list(trace.y), name=trace.name,
                       marker_color=colour)]
    return [go.Heatmap(z=trace.z, x=[str(v) for v in trace.x], y=[str(v) for v in trace.y],
                       colorscale=HEATMAP_COLOURS.capitalize(), name=trace.name)]


def figure(chart: Chart) -> go.Figure:
    fig = go.Figure()
    for trace, colour in zip(chart.traces, chart.colours(), strict=True):
        fig.add_traces(_traces(trace, colour))
    fig.update_layout(title=chart.title, xaxis_title=chart.x_label, yaxis_title=chart.y_label,
                      template="plotly_white", barmode="group", height=460,
                      margin={"l": 60, "r": 30, "t": 60, "b": 60})
    if any(t.kind == "heatmap" for t in chart.traces):
        fig.update_yaxes(autorange="reversed")
        fig.update_traces(colorbar_title_text=chart.z_label, selector={"type": "heatmap"})
    return fig


def save_html(chart: Chart, path: Path) -> None:
    """A standalone page that works offline: plotly's JavaScript is embedded, no CDN."""
    figure(chart).write_html(path, include_plotlyjs=True, full_html=True)
