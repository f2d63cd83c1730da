"""The ``fakeblock up`` options, built from the option table on the config dataclasses.

Each command-line option is a field of a stage's config (or of ``PipelineConfig``, the
``pipeline`` section) made with :func:`fakeblock.common.options.option`: its name, help,
default and limits are read from there, so the command, the site file and the
environment variables cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any, Collection, Mapping, Optional

import typer

from fakeblock.common.config import (
    CaptureConfig,
    ClassifyConfig,
    DetectConfig,
    DisplayConfig,
    PipelineConfig,
    SupervisorConfig,
)
from fakeblock.common.options import SAME_AS_FIELD, Option, TableEntry, entries_of
from fakeblock.common.stages import STAGES

PIPELINE_SECTION = "pipeline"  # options of PipelineConfig itself (worker counts)
SUPERVISOR_SECTION = "supervisor"  # PipelineConfig.supervisor: the [supervisor] keys of the site file
# The order of the options in `fakeblock up --help`: source, outputs, workers, model, detection, metrics.
SECTIONS: tuple[tuple[str, type], ...] = (("capture", CaptureConfig), ("display", DisplayConfig),
                                          (PIPELINE_SECTION, PipelineConfig), ("classify", ClassifyConfig),
                                          ("detect", DetectConfig), (SUPERVISOR_SECTION, SupervisorConfig))


ON_OFF_METAVAR = "on|off"  # a switch typed as a word, in the help: --tracking on|off


class OnOff(str, Enum):
    """A switch typed as a word: ``--tracking off``."""

    on = "on"
    off = "off"


@dataclass(frozen=True)
class UpOption:
    """One ``fakeblock up`` option: the config section and field it sets, and how it is offered."""

    section: str
    entry: TableEntry

    @property
    def name(self) -> str:
        """The option's parameter name: its field's."""
        return self.entry.name

    @property
    def field(self) -> dataclasses.Field:
        """The config field the option sets."""
        return self.entry.field

    @property
    def option(self) -> Option:
        """How the table describes it."""
        return self.entry.option

    @property
    def annotation(self) -> Any:
        """Its type as typer reads it."""
        return _command_line_type(self.entry.annotation)

    def parameter(self) -> inspect.Parameter:
        """The typer parameter of this option."""
        default = self.field.default if self.option.command_line_default is SAME_AS_FIELD \
            else self.option.command_line_default
        annotation: Any
        if self.option.words:
            annotation, default = OnOff, OnOff.on if default else OnOff.off
        elif self.option.comma_list:
            annotation, default = str, ",".join(default) if isinstance(default, tuple) else default
        else:
            annotation = self.annotation
        flags = self.option.flags or (f"--{self.name.replace('_', '-')}",)
        numeric = annotation in (int, float)
        metavar = self.option.metavar or (ON_OFF_METAVAR if self.option.words else None)
        typer_option = typer.Option(default, *flags, help=self.option.help, metavar=metavar,
                                    case_sensitive=False, min=self.option.minimum if numeric else None,
                                    max=_maximum(self) if numeric else None)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=typer_option,
                                 annotation=annotation)

    def config_value(self, value: Any) -> Any:
        """The command line's ``value`` as the config field takes it."""
        if self.option.words:
            return value is OnOff.on or value == OnOff.on.value
        if self.option.comma_list and isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value


def _maximum(option: UpOption) -> float | None:
    """An option's upper limit; a worker count's is its stage's worker limit in the registry."""
    for spec in STAGES:
        if spec.workers_field == option.name:
            return spec.worker_limit
    return option.option.maximum


def _command_line_type(annotation: Any) -> Any:
    """``str | None`` as typer reads it (``Optional[str]``); other types as they are."""
    arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        return Optional[arguments[0]]
    return annotation


def up_options() -> list[UpOption]:
    """Every command-line option of ``fakeblock up`` from the table, in help order."""
    options = []
    for section, config_class in SECTIONS:
        options += [UpOption(section, entry) for entry in entries_of(config_class) if entry.option.command_line]
    names = [option.name for option in options]
    if len(names) != len(set(names)):
        raise ValueError(f"two config fields offer the same option: {sorted(names)}")
    return options


UP_OPTIONS = {option.name: option for option in up_options()}
# Option name -> (the config it sets, its field); "pipeline" is PipelineConfig itself.
STAGE_OPTIONS = {option.name: (option.section, option.field.name) for option in UP_OPTIONS.values()}


def with_table_options(command, names: Collection[str] | None = None):
    """``command`` (a function taking ``**options``) with a signature typer reads: one keyword
    parameter per table option (or per one of ``names``, ``fakeblock up``'s flags for them),
    then its own parameters."""
    own = [parameter for parameter in inspect.signature(command, eval_str=True).parameters.values()
           if parameter.kind is not inspect.Parameter.VAR_KEYWORD]
    context = [parameter for parameter in own if parameter.annotation is typer.Context]
    rest = [parameter for parameter in own if parameter.annotation is not typer.Context]
    table = [option.parameter() for option in UP_OPTIONS.values() if names is None or option.name in names]
    parameters = [*context, *table, *[parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY) for parameter in rest]]
    command.__signature__ = inspect.Signature(parameters, return_annotation=None)
    command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
    return command


def config_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """The command line's option values converted for the config fields they set."""
    return {name: UP_OPTIONS[name].config_value(value) for name, value in options.items()}
