"""fakeblock: real-time facial emotion recognition as a multiprocess ZeroMQ pipeline.

In one process, without the pipeline::

    import fakeblock

    with fakeblock.Analyzer() as analyzer:
        faces = analyzer.analyze("photo.jpg")

or, for one image or video, ``faces = fakeblock.analyze("photo.jpg")``.

The names below load on first use (module ``__getattr__``), so ``import fakeblock``
loads neither OpenCV nor the model runtime (nor pandas, which ``results_frame`` needs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from fakeblock.common.version import VERSION as __version__

if TYPE_CHECKING:
    from fakeblock.api.analyzer import Analyzer, ImageError, analyze
    from fakeblock.api.analyzer_options import OptionError
    from fakeblock.api.analyzer_results import Face, FrameResult
    from fakeblock.api.results_table import results_frame
    from fakeblock.capture.demo import astronaut_photo
    from fakeblock.common.errors import UserError

# Public name -> the module that defines it.
_LAZY_NAMES = {
    "Analyzer": "fakeblock.api.analyzer",
    "ImageError": "fakeblock.api.analyzer",
    "analyze": "fakeblock.api.analyzer",  # Analyzer(**options).analyze or .analyze_video in one call
    "OptionError": "fakeblock.api.analyzer_options",
    "Face": "fakeblock.api.analyzer_results",
    "FrameResult": "fakeblock.api.analyzer_results",
    "results_frame": "fakeblock.api.results_table",  # a pandas DataFrame of results, a row per face
    "UserError": "fakeblock.common.errors",
    "astronaut_photo": "fakeblock.capture.demo",  # the demo's photo, for a first try of analyze()
}
__all__ = ["Analyzer", "Face", "FrameResult", "ImageError", "OptionError", "UserError", "__version__",
           "analyze", "astronaut_photo", "results_frame"]


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is used."""
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'fakeblock' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_NAMES])
