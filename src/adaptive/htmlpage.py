"""Self-contained HTML report pages: tables that scroll in their box, figures embedded as base64 PNG.

One look for every report the project writes (simulation studies, security reports), so a page can be
mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io

__all__ = ["table", "figure_png", "image", "page"]

STYLE = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#1d2430;"
         "line-height:1.45} .scroll{overflow-x:auto;max-width:100%;margin-bottom:1em;max-height:36em;overflow-y:auto}"
         " table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ccc;padding:2px 6px;"
         "text-align:right;white-space:nowrap} td.text,th.text{text-align:left} th{background:#f2f4f7;"
         "position:sticky;top:0} img{max-width:100%;height:auto} .note{color:#4a5563;font-size:13px} "
         ".flag{color:#a4161a;font-weight:600} .cards{display:flex;flex-wrap:wrap;gap:12px;margin:1em 0} "
         ".card{border:1px solid #d6dbe1;border-radius:6px;padding:8px 14px;min-width:150px} "
         ".card b{display:block;font-size:22px} @media print{.scroll{max-height:none;overflow:visible}}")


def _fmt(v, digits: int) -> str:
    if isinstance(v, float):
        if v != v:  # NaN
            return ""
        if v != 0 and abs(v) < 10.0 ** -digits:  # a tiny p-value stays readable
            return f"{v:.1e}"
        return f"{v:.{digits}f}"
    if v is None:
        return ""
    return html.escape(str(v))


def table(rows: list[dict], cols: list[str], *, digits: int = 4, text_cols: tuple[str, ...] = (),
          labels: dict[str, str] | None = None, cell_class=None) -> str:
    """An HTML table of ``rows`` (dicts) in ``cols`` order; floats with ``digits`` decimals, NaN/None empty.

    ``cell_class(row, col)`` may return a CSS class for a cell (e.g. ``"flag"``).
    """
    labels = labels or {}

    def cls(c, extra=""):
        names = " ".join(x for x in ("text" if c in text_cols else "", extra) if x)
        return f" class='{names}'" if names else ""

    head = "".join(f"<th{cls(c)}>{html.escape(labels.get(c, c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td{cls(c, cell_class(r, c) if cell_class else '')}>{_fmt(r.get(c, ''), digits)}"
                                    "</td>" for c in cols) + "</tr>" for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG embedded."""
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"


def page(title: str, body_parts: list[str]) -> str:
    """The whole page."""
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body_parts)}</body></html>\n")
