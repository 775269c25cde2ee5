"""Printing text that came from elsewhere (session names, server model ids) without letting it drive the terminal.

A name imported from a file or a model id sent by a server may hold ESC sequences (recolour, retitle, rewrite
the screen, OSC 52 clipboard writes) or bidi overrides that reorder what is shown. ``printable`` shows every such
character as a visible escape instead; ``to_json`` keeps JSON output free of raw C1 controls too.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab, DEL, C1 controls (U+0080-U+009F: 8-bit CSI/OSC), and Unicode's bidi and line controls.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# json.dumps(ensure_ascii=False) escapes C0 already; these it leaves raw.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` on one line with control, escape and bidi characters shown as ``\\xNN`` / ``\\uNNNN``."""
    return _UNSAFE.sub(_escape, str(text))


def to_json(data: Any) -> str:
    """``json.dumps(data, ensure_ascii=False)`` with the control characters it leaves raw escaped (still valid
    JSON: they only ever occur inside strings)."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(data, ensure_ascii=False))
