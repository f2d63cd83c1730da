"""The settings of :class:`~fakeblock.api.analyzer.Analyzer`, read from the option table.

An analyzer takes the detect and classify settings under the names ``fakeblock up`` gives
them (the fields of :class:`DetectConfig` and :class:`ClassifyConfig` made with
:func:`fakeblock.common.options.option`), and ``analyze_video`` the capture settings that
concern one source (``stream``, ``realtime``, ``max_frames``).  Values are checked against
the same limits the command line enforces.  ``analyze`` also takes ``color``, the channel
order of an array (no option of ``fakeblock up``, whose frames come from OpenCV in BGR).
Nothing here loads OpenCV or a model, so the CLI can build its ``analyze`` options from it
at start-up.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from typing import Any

from fakeblock.common.config import CaptureConfig, ClassifyConfig, DetectConfig
from fakeblock.common.errors import UserError
from fakeblock.common.options import Option, TableEntry, entries_of

# Batching between processes: in-process, each frame's faces are one model call.
PIPELINE_ONLY_OPTIONS = ("max_batch_size", "batch_timeout_ms")
# The capture settings that concern one source (the rest are worked out by `fakeblock up`).
SOURCE_OPTIONS = ("stream", "realtime", "max_frames")
# The channel orders an array given to ``analyze`` may have; OpenCV's BGR first, the default.
COLOR_ORDERS = ("bgr", "rgb")

# How an option's type is named in an error.
TYPE_WORDS = {bool: "True or False", int: "a whole number", float: "a number", str: "a string"}


class OptionError(UserError, ValueError):
    """An analyzer option with a value outside what the option table allows."""


# One setting as the analyzer takes it.
TableOption = TableEntry


def _table(config_class: type, wanted: typing.Callable[[str, Option], bool]) -> dict[str, TableOption]:
    return {entry.name: entry for entry in entries_of(config_class) if wanted(entry.name, entry.option)}


def _in_process(name: str, described: Option) -> bool:
    return not described.derived and name not in PIPELINE_ONLY_OPTIONS


ANALYZER_OPTIONS = {**_table(DetectConfig, _in_process), **_table(ClassifyConfig, _in_process)}
VIDEO_OPTIONS = _table(CaptureConfig, lambda name, _described: name in SOURCE_OPTIONS)
# What `fakeblock analyze` offers, with `fakeblock up`'s flags: the analyzer's options
# that are on up's command line, and --max-frames for videos.
ANALYZE_COMMAND_OPTIONS = (*ANALYZER_OPTIONS, "max_frames")


def _refuse_unknown(options: Mapping[str, Any], valid: Mapping[str, TableOption], caller: str) -> None:
    """A ``TypeError`` naming every unknown option and the valid names, as Python does for keywords."""
    unknown = sorted(set(options) - set(valid))
    if not unknown:
        return
    pipeline_only = [name for name in unknown if name in PIPELINE_ONLY_OPTIONS]
    note = f" ({', '.join(pipeline_only)}: batching between the processes of `fakeblock up` only)" \
        if pipeline_only else ""
    raise TypeError(f"{caller} got unknown option(s) {', '.join(unknown)}{note}; "
                    f"valid options: {', '.join(valid)}")


def _allowed_types(annotation: Any) -> tuple[tuple[type, ...], bool]:
    """The Python types a value of ``annotation`` may have, and whether None is allowed."""
    arguments = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    kinds = tuple(argument for argument in arguments if argument is not type(None))
    return kinds, type(None) in arguments


def checked_value(described: TableOption, value: Any) -> Any:
    """``value`` as the config field takes it (an int for a float, a path as text), or ``OptionError``."""
    kinds, optional = _allowed_types(described.annotation)
    if value is None and optional:
        return None
    if str in kinds and isinstance(value, os.PathLike):
        value = os.fspath(value)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    # bool is an int in Python: True is no frame count, 1 is no switch.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        expected = " or ".join([TYPE_WORDS.get(kind, kind.__name__) for kind in kinds] + (["None"] if optional else []))
        raise OptionError(f"{described.name} must be {expected}, not {value!r}")
    _check_limits(described, value)
    return value


def _check_limits(described: TableOption, value: Any) -> None:
    option = described.option
    if option.minimum is not None and value < option.minimum:
        raise OptionError(f"{described.name} must be at least {option.minimum}, not {value!r}")
    if option.maximum is not None and value > option.maximum:
        raise OptionError(f"{described.name} must be at most {option.maximum}, not {value!r}")
    if option.choices is not None and value not in option.choices:
        raise OptionError(f"{described.name} must be one of {', '.join(option.choices)}, not {value!r}")


def _settings(config_class: type, options: Mapping[str, Any], valid: Mapping[str, TableOption]) -> Any:
    """An instance of ``config_class`` with the options that belong to it, checked."""
    return config_class(**{name: checked_value(valid[name], value) for name, value in options.items()
                           if valid[name].config_class is config_class})


def analyzer_settings(options: Mapping[str, Any]) -> tuple[DetectConfig, ClassifyConfig]:
    """The detect and classify settings of an analyzer made with ``options``.

    Unknown names raise ``TypeError`` listing the valid ones; bad values ``OptionError``.
    """
    _refuse_unknown(options, ANALYZER_OPTIONS, "Analyzer()")
    return _settings(DetectConfig, options, ANALYZER_OPTIONS), _settings(ClassifyConfig, options, ANALYZER_OPTIONS)


def video_settings(options: Mapping[str, Any]) -> CaptureConfig:
    """The capture settings of one ``analyze_video`` call (``stream``, ``realtime``, ``max_frames``)."""
    _refuse_unknown(options, VIDEO_OPTIONS, "analyze_video()")
    return _settings(CaptureConfig, options, VIDEO_OPTIONS)


def checked_color(color: object) -> str:
    """``color`` if it is one of :data:`COLOR_ORDERS`, else ``OptionError``."""
    if not isinstance(color, str) or color not in COLOR_ORDERS:
        raise OptionError(f"color must be one of {', '.join(COLOR_ORDERS)}, not {color!r}")
    return color
