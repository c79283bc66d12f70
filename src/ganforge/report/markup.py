"""HTML pieces for the report: embedded pictures, figures with captions, notes. Everything is escaped here."""

from __future__ import annotations

import base64
import io
from html import escape

from PIL import Image

from ganforge.report.images import png_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def data_uri(png: bytes) -> str:
    """Return PNG bytes as a `data:` URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(picture: Image.Image | bytes, alt: str, width: int | None = None, pixelated: bool = False) -> str:
    """Return an <img> of a PIL image or image file bytes (embedded as PNG), `width` CSS pixels wide.

    The width defaults to the picture's own. `pixelated` keeps pixels square when the browser enlarges the
    picture (small images, high-DPI screens); it is dropped when the picture is shown smaller than it is,
    where smoothing looks better.
    """
    if isinstance(picture, Image.Image):
        natural_width, natural_height = picture.size
        png = png_bytes(picture)
    else:
        with Image.open(io.BytesIO(picture)) as opened:
            natural_width, natural_height = opened.size
            png = picture if picture.startswith(PNG_SIGNATURE) else png_bytes(opened)
    width = width or natural_width
    height = round(natural_height * width / natural_width)
    css = ' class="pixels"' if pixelated and width >= natural_width else ""
    return (
        f'<img src="{data_uri(png)}" alt="{escape(alt)}" width="{width}" height="{height}"{css} '
        f'loading="lazy">'
    )


def figure(content: str, caption: str = "", css_class: str = "") -> str:
    """Return a <figure> around HTML `content`, with a plain-text caption."""
    klass = f' class="{css_class}"' if css_class else ""
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure{klass}>{content}{caption_html}</figure>"


def note(text: str) -> str:
    """Return a paragraph of plain text set apart as a note (something missing, how to get it)."""
    return f'<p class="note">{escape(text)}</p>'
