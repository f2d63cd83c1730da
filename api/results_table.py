"""The results of an :class:`~fakeblock.api.analyzer.Analyzer` as a pandas DataFrame, a row per face.

pandas is not in the base install: the ``pandas`` extra brings it, and it loads only when
:func:`results_frame` runs, so ``import fakeblock`` (and this module) stay without it.
Without it, :func:`results_frame` raises a one-line ``UserError`` naming the extra.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fakeblock.api.analyzer_results import STILL_STREAM, Face, FrameResult
from fakeblock.common.errors import UserError
from fakeblock.common.model_io import EMOTIONS

if TYPE_CHECKING:
    import pandas

PANDAS_EXTRA_INSTALL = "pip install 'fakeblock[pandas]'"
FRAME_COLUMNS = ("stream", "frame", "time_s")
TRACK_COLUMN = "track"
BOX_COLUMNS = ("x", "y", "width", "height")  # a Face's box, in its order
EMOTION_COLUMN = "emotion"
# The columns' types, so that an empty table has them too; "Int64" lets a face without a track be <NA>.
NUMBER_TYPES = {"frame": "int64", "time_s": "float64", TRACK_COLUMN: "Int64",
                **dict.fromkeys(BOX_COLUMNS, "int64"), **dict.fromkeys(EMOTIONS, "float64")}


def results_frame(results: Iterable[FrameResult] | Iterable[Face]) -> pandas.DataFrame:
    """A DataFrame with one row per face of ``results``, the list ``analyze`` or ``analyze_video`` gives.

    Its columns: ``stream``, ``frame``, ``time_s``, ``track`` (only when the faces are
    tracked), the box as ``x``, ``y``, ``width``, ``height``, the top ``emotion`` and the
    score of each emotion (``angry`` ... ``neutral``; with tracking the smoothed
    ``scores``).  A still image's faces are frame 0 at 0 s of stream ``"image"``.  A frame
    without a face has no row, so its number is missing from ``frame``: count frames with
    ``len(results)``, not from the table.  Raises ``UserError`` when pandas is not installed.
    """
    pandas = import_pandas()
    frames = as_frames(list(results))
    tracked = any(face.track is not None for frame in frames for face in frame.faces)
    columns = table_columns(tracked)
    rows = [face_row(frame, face, tracked) for frame in frames for face in frame.faces]
    table = pandas.DataFrame(rows, columns=list(columns))
    return table.astype({column: NUMBER_TYPES[column] for column in columns if column in NUMBER_TYPES})


def import_pandas() -> ModuleType:
    """The pandas module, or a one-line ``UserError`` saying how to install it."""
    try:
        import pandas
    except ImportError as error:
        if (error.name or "").split(".")[0] != "pandas":
            raise  # pandas is there but something it needs is broken: the traceback says what
        raise UserError(f"results_frame() needs pandas, which the base install leaves out: "
                        f"{PANDAS_EXTRA_INSTALL}") from None
    return pandas


def as_frames(results: list[FrameResult | Face]) -> list[FrameResult]:
    """Frame results as they are; a still image's faces as its one frame."""
    if all(isinstance(item, FrameResult) for item in results):
        return [item for item in results if isinstance(item, FrameResult)]
    if all(isinstance(item, Face) for item in results):
        return [FrameResult(STILL_STREAM, 0, 0.0, tuple(item for item in results if isinstance(item, Face)))]
    kinds = sorted({type(item).__name__ for item in results})
    raise TypeError(f"results_frame() takes what analyze() or analyze_video() gives, faces or frame results, "
                    f"not {', '.join(kinds)}")


def table_columns(tracked: bool) -> tuple[str, ...]:
    """The table's columns, in order; ``track`` only for tracked faces."""
    return (*FRAME_COLUMNS, *((TRACK_COLUMN,) if tracked else ()), *BOX_COLUMNS, EMOTION_COLUMN, *EMOTIONS)


def face_row(frame: FrameResult, face: Face, tracked: bool) -> tuple[Any, ...]:
    """One face's values, in the order of :func:`table_columns`."""
    track = (face.track,) if tracked else ()
    return (frame.stream, frame.frame, frame.time_s, *track, *face.box, face.emotion,
            *(face.scores[emotion] for emotion in EMOTIONS))
