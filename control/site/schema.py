"""The schema of the deployment file: keys, types, limits and their environment variables.

:mod:`fakeblock.control.site.loading` explains the file; this module checks values against
:class:`Field` descriptions.  A stage's own settings come from its config dataclass in
:mod:`fakeblock.common.config`, so a field added there is accepted here without changes.

Environment variables override the file (for containers):

- ``FAKEBLOCK_<KEY>`` for ``[site]`` keys: ``FAKEBLOCK_KEYS``, ``FAKEBLOCK_INSECURE``, ``FAKEBLOCK_CLIENT_KEY``;
- ``FAKEBLOCK_SUPERVISOR_<KEY>``: ``FAKEBLOCK_SUPERVISOR_PORT``, ``_BIND``, ``_METRICS_PORT``, ...;
- ``FAKEBLOCK_<STAGE>_<KEY>``: ``FAKEBLOCK_CAPTURE_SOURCE``, ``FAKEBLOCK_DETECT_WORKERS``, ...;
- ``FAKEBLOCK_CONFIG`` (the file), ``FAKEBLOCK_ONLY`` (``--only``), ``FAKEBLOCK_HOST`` (``--host``).

Lists are comma-separated (``FAKEBLOCK_DISPLAY_OUTPUTS=web,none``), booleans are
1/0/true/false/yes/no/on/off, and an empty value clears an optional setting.
:func:`environment_variables` lists every name read.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import logging
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from fakeblock.common.config import MAX_PORT, PipelineConfig, SupervisorConfig
from fakeblock.common.errors import UserError
from fakeblock.common.options import table_of
from fakeblock.common.runtime import STAGE_VARIABLE, SUPERVISOR_PID_VARIABLE
from fakeblock.common.stages import STAGE_NAMES, STAGES, bound_links
from fakeblock.train.data_cache import CACHE_DIRECTORY_VARIABLE

LOGGER = logging.getLogger(__name__)
# From the stage registry: what each stage binds, how many workers it may have, its settings.
BOUND_LINKS = bound_links()
WORKER_LIMITS = {spec.name: spec.worker_limit for spec in STAGES if spec.workers_field}
STAGE_CONFIGS = {spec.name: typing.get_type_hints(PipelineConfig)[spec.config_field]
                 for spec in STAGES if spec.config_field}
DEFAULT_SUPERVISOR_PORT = 5557
WILDCARD_HOSTS = ("*", "0.0.0.0", "::")
ENVIRONMENT_PREFIX = "FAKEBLOCK_"
CONFIG_VARIABLE, ONLY_VARIABLE, HOST_VARIABLE = "FAKEBLOCK_CONFIG", "FAKEBLOCK_ONLY", "FAKEBLOCK_HOST"
# Set by the supervisor or read elsewhere: never warned about as unknown.
INTERNAL_VARIABLES = (SUPERVISOR_PID_VARIABLE, STAGE_VARIABLE, CACHE_DIRECTORY_VARIABLE)
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
STRINGS, INTEGERS = "strings", "integers"
KIND_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
              STRINGS: "a string or a list of strings", INTEGERS: "an integer or a list of integers"}


@dataclass(frozen=True)
class Field:
    """One key: its kind (str, int, float, bool, STRINGS, INTEGERS), optionality and limits."""

    kind: Any
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


PORT = Field(int, minimum=1, maximum=MAX_PORT)
SITE_FIELDS = {"keys": Field(str, optional=True), "insecure": Field(bool), "client_key": Field(str)}
# The status service's own keys; the rest of [supervisor] is SupervisorConfig's option table.
SUPERVISOR_SERVICE_FIELDS = {"port": PORT, "bind": Field(str, optional=True)}


def _field_from_annotation(annotation) -> Field | None:
    """A Field for a dataclass annotation, or None for types a file cannot express."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
        optional = len(arguments) < len(typing.get_args(annotation))
        if len(arguments) != 1:
            return None
        annotation = arguments[0]
    if annotation in (str, int, float, bool):
        return Field(annotation, optional)
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) in ((str, ...), (int, ...)):
        return Field(STRINGS if typing.get_args(annotation)[0] is str else INTEGERS, optional)
    return None


def option_fields(config_class: type | None) -> dict[str, Field]:
    """The keys a config's option table gives (less what ``fakeblock up`` derives)."""
    if config_class is None:
        return {}
    hints = typing.get_type_hints(config_class)
    options = {}
    for dataclass_field, described in table_of(config_class):
        field = _field_from_annotation(hints[dataclass_field.name])
        if field is not None and not described.derived:
            options[dataclass_field.name] = Field(field.kind, field.optional, minimum=described.minimum,
                                                  maximum=described.maximum, choices=described.choices)
    return options


SUPERVISOR_FIELDS = {**SUPERVISOR_SERVICE_FIELDS, **option_fields(SupervisorConfig)}


def stage_fields(stage: str) -> dict[str, Field]:
    """Every key ``[stages.<stage>]`` accepts."""
    schema = {"host": Field(STRINGS)}
    if stage in BOUND_LINKS:
        schema.update(bind=Field(str, optional=True), port=PORT, ports=Field(INTEGERS, minimum=1, maximum=MAX_PORT))
    if stage in WORKER_LIMITS:
        schema["workers"] = Field(int, minimum=1, maximum=WORKER_LIMITS[stage])
    return {**schema, **option_fields(STAGE_CONFIGS.get(stage))}


@functools.cache
def sections() -> dict[tuple[str, ...], dict[str, Field]]:
    """Section path (("site",), ("stages", "capture"), ...) -> its fields."""
    result: dict[tuple[str, ...], dict[str, Field]] = {("site",): SITE_FIELDS, ("supervisor",): SUPERVISOR_FIELDS}
    result.update({("stages", stage): stage_fields(stage) for stage in STAGE_NAMES})
    return result


def environment_name(section: tuple[str, ...], key: str) -> str:
    """``FAKEBLOCK_KEYS`` for site keys, ``FAKEBLOCK_<STAGE or SUPERVISOR>_<KEY>`` otherwise."""
    parts = (key,) if section == ("site",) else (section[-1], key)
    return ENVIRONMENT_PREFIX + "_".join(part.upper() for part in parts)


def environment_variables() -> list[str]:
    """Every environment variable the deployment code reads, sorted."""
    names = {CONFIG_VARIABLE, ONLY_VARIABLE, HOST_VARIABLE}
    names.update(environment_name(section, key) for section, schema in sections().items() for key in schema)
    return sorted(names)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} {value!r}"


def split_document(document: Mapping[str, Any], source: str) -> dict[tuple[str, ...], dict | list[dict]]:
    """Section path -> table, refusing unknown sections and stages.

    Capture alone may be a list of tables (``[[stages.capture]]``, one per camera).
    """
    tables: dict[tuple[str, ...], dict | list[dict]] = {}
    for name, table in document.items():
        if name not in ("site", "supervisor", "stages"):
            raise UserError(f"{source}: unknown section [{name}]{_suggest(name, ('site', 'supervisor', 'stages'))}; "
                            f"expected [site], [supervisor] and [stages.<stage>]")
        if not isinstance(table, dict):
            raise UserError(f"{source}: {name} must be a table ([{name}]), got {_describe(table)}")
        if name != "stages":
            tables[(name,)] = table
            continue
        for stage, stage_table in table.items():
            if stage not in STAGE_NAMES:
                raise UserError(f"{source}: unknown stage [stages.{stage}]{_suggest(stage, STAGE_NAMES)}; "
                                f"choose from {', '.join(STAGE_NAMES)}")
            tables[("stages", stage)] = _stage_tables(stage, stage_table, source)
    return tables


def _stage_tables(stage: str, value: Any, source: str) -> dict | list[dict]:
    """A stage's table, or for capture a non-empty list of tables."""
    if stage == "capture" and isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return value
    if not isinstance(value, dict):
        hint = " or a list of tables ([[stages.capture]])" if stage == "capture" else ""
        raise UserError(f"{source}: stages.{stage} must be a table{hint}, got {_describe(value)}")
    return value


def check_table(table: Mapping[str, Any], schema: Mapping[str, Field], where: str) -> dict[str, Any]:
    """Checked values of a table; an unknown key or a wrong value is one ``UserError``."""
    values = {}
    for key, value in table.items():
        if key not in schema:
            raise UserError(f"{where}: unknown key {key!r}{_suggest(key, schema)}; known keys: {', '.join(schema)}")
        values[key] = check_value(value, schema[key], f"{where}.{key}")
    return values


def _check_scalar(value: Any, kind: Any, where: str) -> Any:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    valid = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
             float: is_number, str: isinstance(value, str)}[kind]
    if not valid:
        raise UserError(f"{where}: expected {KIND_NAMES[kind]}, got {_describe(value)}")
    return float(value) if kind is float else value


def _check_limits(value: Any, field: Field, where: str) -> None:
    if field.choices is not None and value not in field.choices:
        raise UserError(f"{where}: {value!r} is not one of {', '.join(field.choices)}")
    if field.minimum is not None and value < field.minimum or field.maximum is not None and value > field.maximum:
        limits = f"{field.minimum if field.minimum is not None else '-inf'} to " \
                 f"{field.maximum if field.maximum is not None else 'inf'}"
        raise UserError(f"{where}: {value} is out of range ({limits})")


def check_value(value: Any, field: Field, where: str) -> Any:
    """``value`` converted to the field's type (lists become tuples), or a ``UserError``."""
    if value is None and field.optional:
        return None
    if field.kind in (STRINGS, INTEGERS):
        items = value if isinstance(value, list) else [value]
        if not items:
            raise UserError(f"{where}: expected {KIND_NAMES[field.kind]}, got an empty list")
        value = tuple(_check_scalar(item, str if field.kind == STRINGS else int, where) for item in items)
        for item in value:
            _check_limits(item, field, where)
        return value
    value = _check_scalar(value, field.kind, where)
    _check_limits(value, field, where)
    return value


def _from_text(text: str, kind: Any, where: str) -> Any:
    if kind is str:
        return text
    if kind is bool and text.lower() in TRUE_WORDS + FALSE_WORDS:
        return text.lower() in TRUE_WORDS
    try:
        return {int: int, float: float}[kind](text)
    except (KeyError, ValueError):
        raise UserError(f"{where}: expected {KIND_NAMES[kind]}, got {text!r}") from None


def parse_environment_value(text: str, field: Field, where: str) -> Any:
    """An environment string converted like a file value (lists are comma-separated)."""
    text = text.strip()
    if not text and field.optional:
        return None
    if field.kind in (STRINGS, INTEGERS):
        kind = str if field.kind == STRINGS else int
        items = [_from_text(part.strip(), kind, where) for part in text.split(",") if part.strip()]
        return check_value(items, field, where)
    return check_value(_from_text(text, field.kind, where), field, where)


def environment_overrides(section: tuple[str, ...], schema: Mapping[str, Field],
                          environ: Mapping[str, str]) -> dict[str, Any]:
    """Values of the section's variables that are set in ``environ``."""
    overrides = {}
    for key, field in schema.items():
        name = environment_name(section, key)
        if name in environ:
            overrides[key] = parse_environment_value(environ[name], field, f"environment {name}")
    return overrides


def warn_unknown_variables(environ: Mapping[str, str]) -> None:
    """Log FAKEBLOCK_<STAGE>_... variables nothing reads: most likely typos in a compose file."""
    known = set(environment_variables()) | set(INTERNAL_VARIABLES)
    prefixes = tuple(f"{ENVIRONMENT_PREFIX}{name.upper()}_" for name in (*STAGE_NAMES, "supervisor"))
    for name in environ:
        if name.startswith(prefixes) and name not in known:
            LOGGER.warning("environment variable %s is not used by fakeblock%s", name, _suggest(name, known))


def format_host(host: str) -> str:
    """``host`` for an endpoint: IPv6 addresses go in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def tcp(host: str, port: int) -> str:
    """``tcp://host:port``."""
    return f"tcp://{format_host(host)}:{port}"


def check_hosts(hosts: tuple[str, ...], where: str, single: bool, wildcard: bool = False) -> None:
    """Refuse host values that cannot work: several for a listening stage, ports, wildcards."""
    if single and len(hosts) != 1:
        raise UserError(f"{where}: a stage that listens runs on exactly one host, got {len(hosts)}")
    for host in hosts:
        bare = host.strip("[]")
        if not bare or any(character.isspace() or character == "/" for character in bare):
            raise UserError(f"{where}: {host!r} is not a host name or address")
        if ":" in bare and not _is_ip_address(bare):
            raise UserError(f"{where}: {host!r} is not an address; put the port in port or ports")
        if bare in WILDCARD_HOSTS and not wildcard:
            raise UserError(f"{where}: {host} means every interface and cannot be connected to; "
                            f"put it in bind and give this machine's address as host")


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
