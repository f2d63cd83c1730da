"""Whether this machine can show a window (the display stage's window output needs one)."""

from __future__ import annotations

import os
import sys


def screen_available() -> bool:
    """True when a window can be opened (an X11 or Wayland display on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True
