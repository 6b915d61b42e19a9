"""Plots and the HTML report (issue 8). ``save`` writes a chart as PNG (matplotlib) or as a
standalone interactive HTML page (plotly), chosen by the file's suffix."""

from pathlib import Path

from volcast.errors import VolcastError
from volcast.viz.spec import Chart

SUFFIXES = (".png", ".html")


def save(chart: Chart, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise VolcastError(f"--out must end in .png (static) or .html (interactive), "
                           f"not '{path.name}'")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        from volcast.viz.static import save_png

        save_png(chart, path)
    else:
        from volcast.viz.interactive import save_html

        save_html(chart, path)
