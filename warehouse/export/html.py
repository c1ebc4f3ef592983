"""A self-contained HTML report: Plotly.js inlined from the installed plotly package (no
CDN, opens offline), each figure's JSON embedded as data, text escaped.

Figure JSON goes into ``<script type="application/json">`` with ``<``, ``>`` and ``&``
escaped as ``\\u003c``..., so a value such as ``</script><script>...`` in the data stays
data. Titles and errors are HTML-escaped."""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}
h1{font-size:1.5em;margin:0 0 4px} .meta{color:#666;margin-bottom:16px}
.grid{display:grid;grid-template-columns:repeat(24,1fr);gap:12px}
.panel{border:1px solid #ddd;border-radius:6px;padding:8px;min-height:120px;overflow:hidden}
.panel h2{font-size:1em;margin:0 0 6px} .error{color:#b00020;white-space:pre-wrap}
.stat{font-size:2.2em;font-weight:600;margin:12px 0}
"""

_SCRIPT = """
for (const holder of document.querySelectorAll('script[data-figure]')) {
  const figure = JSON.parse(holder.textContent);
  const target = document.getElementById(holder.dataset.figure);
  figure.layout = Object.assign({}, figure.layout, {autosize: true});
  Plotly.newPlot(target, figure.data, figure.layout,
                 {responsive: true, displaylogo: false});
}
"""


@cache
def plotly_js() -> str:
    """Plotly.js from the installed plotly package."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _json_for_script(value) -> str:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def report_html(title: str, sections: list[dict], *, description: str | None = None,
                meta: str | None = None) -> str:
    """The HTML of a report. Each section: ``title``, ``figure`` (Plotly JSON) or ``error``,
    optional ``grid`` ({x, w, h} on 24 columns)."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
             f"<script>{plotly_js()}</script></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    if meta:
        parts.append(f"<div class=\"meta\">{html.escape(meta)}</div>")
    parts.append("<div class=\"grid\">")
    for index, section in enumerate(sections):
        grid = section.get("grid") or {}
        x, w, h = int(grid.get("x", 0)), int(grid.get("w", 24)), int(grid.get("h", 8))
        style = f"grid-column:{x + 1} / span {w};"
        parts.append(f"<section class=\"panel\" style=\"{style}\">"
                     f"<h2>{html.escape(str(section.get('title', '')))}</h2>")
        if section.get("error"):
            parts.append(f"<div class=\"error\">{html.escape(str(section['error']))}</div>")
        elif section.get("figure") is not None:
            div = f"figure-{index}"
            parts.append(f"<div id=\"{div}\" style=\"height:{max(h, 3) * 40}px\"></div>"
                         f"<script type=\"application/json\" data-figure=\"{div}\">"
                         f"{_json_for_script(section['figure'])}</script>")
        parts.append("</section>")
    parts.append(f"</div><script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


def write_report(path, title: str, sections: list[dict], **options) -> int:
    """Write :func:`report_html` to ``path``; returns its size in bytes."""
    text = report_html(title, sections, **options)
    Path(path).write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


__all__ = ["plotly_js", "report_html", "write_report"]
