"""Text people typed, shown as the text they typed: never as markup.

A run's name, a person's name or a label is anyone's text on a class server. Streamlit
renders Markdown (and its own `:red[...]`, `:material/...:` and `$math$`) in captions,
alerts, labels and buttons, and Plotly renders a few HTML tags in titles and legends: a run
named `![p](http://elsewhere/p.png)` would be an image fetched from another server by every
classmate who looks. Every place that shows people's text in such an element passes it
through `plain` (Markdown) or `chart_text` (Plotly); pickers and tables show text as text
and get it unchanged.
"""

from __future__ import annotations

import html
import re
import string

# Every ASCII punctuation as a numeric character reference: Markdown shows the character and
# can make no syntax of it.
_MARKDOWN = str.maketrans({c: f"&#{ord(c)};" for c in string.punctuation})
# GFM also turns addresses in the text it has parsed into links ("http://...", "www.x.org",
# "a@b.org"), escaped or not: a zero-width space inside each start keeps them text.
_LINK_STARTS = re.compile(r"(?i)(?<=https)(?=://)|(?<=http)(?=://)|(?<=www)(?=\.)|(?<=@)")
_ZWSP = "\u200b"


def plain(text: object) -> str:
    """`text` on one line, every ASCII punctuation a character reference: Markdown shows it as written."""
    return _LINK_STARTS.sub(_ZWSP, " ".join(str(text).split())).translate(_MARKDOWN)


def chart_text(text: object) -> str:
    """`text` on one line with <, > and & as entities: a Plotly title or legend shows it as written."""
    return html.escape(" ".join(str(text).split()), quote=False)


__all__ = ["chart_text", "plain"]
