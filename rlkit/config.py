"""Typed configuration: run settings plus one agent's hyperparameters.

A run's configuration is merged in this order, later wins:

1. the defaults of `RunSettings` and of the agent's `Config` model,
2. a YAML file (`--config`), in the same layout as the `config.yaml` a run saves,
3. command-line flags (`--env`, `--steps`, `--seed`, ...),
4. `--set key=value` overrides (agent hyperparameters, or run settings by name;
   nested fields with dots: `--set epsilon.end=0.05`).

Values from `--set` are parsed as YAML scalars (never evaluated as code) and then
validated strictly: unknown keys and wrong types are errors that name the key. YAML
anchors and aliases are refused everywhere (files, `--set`, sweep files): nested
aliases grow a few hundred bytes into gigabytes ("billion laughs"). Errors quote a
user's value cut to `rlkit.errors.ECHO_LIMIT` characters.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from rlkit.errors import UserError, shorten, suggest
from rlkit.safefiles import NotRegularFile, read_regular


class StrictModel(BaseModel):
    """Base for every config model: unknown keys and loose types are errors."""

    model_config = ConfigDict(
        extra="forbid", strict=True, validate_default=True, allow_inf_nan=False
    )


class _AnchorRefused(yaml.composer.ComposerError):
    """An anchor (&name) or alias (*name): not accepted in rlkit's YAML."""


ANCHORS_REFUSED = "YAML anchors and aliases (&name, *name) are not accepted"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-5` (no dot) as a string; this loader reads it as a float too.

    It refuses anchors and aliases before it builds anything from them.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AnchorRefused(None, None, ANCHORS_REFUSED, event.start_mark)
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


MAX_CONFIG_BYTES = 1 << 20  # a config is a few hundred lines; /dev/zero is not one


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config YAML file; a missing, unreadable, huge, non-UTF-8 or malformed file is a
    UserError."""
    file = Path(path)
    try:
        raw = read_regular(file, MAX_CONFIG_BYTES)
        if len(raw) > MAX_CONFIG_BYTES:
            raise UserError(
                f"config file '{shorten(path)}' is larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                "give a YAML file of settings"
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"config file '{path}' not found; give the path of a YAML file") from None
    except UnicodeDecodeError as error:
        raise UserError(
            f"config file '{path}' is not UTF-8 text (byte 0x{error.object[error.start]:02x} "
            f"at offset {error.start}); save it as UTF-8"
        ) from None
    except IsADirectoryError:
        raise UserError(f"config file '{path}' is a folder; give the path of a YAML file") from None
    except NotRegularFile:
        raise UserError(
            f"config file '{path}' is not a regular file (a FIFO, socket or device); give the "
            "path of a YAML file"
        ) from None
    except OSError as error:
        raise UserError(f"config file '{path}' cannot be read ({error.strerror})") from None
    try:
        data = _load(text)
    except _AnchorRefused as error:
        line = error.problem_mark.line + 1 if error.problem_mark is not None else 1
        raise UserError(
            f"config file '{path}' line {line}: {ANCHORS_REFUSED}; write each value out"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise UserError(f"config file '{path}' is malformed{where}: {problem}") from None
    except RecursionError:
        raise UserError(f"config file '{path}' is nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(
            f"config file '{path}' must hold a mapping of settings; "
            f"it holds a {type(data).__name__}"
        )
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Split `key=value`; the value is read as a YAML scalar or flow collection."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set {shorten(text)}: expected key=value, for example --set gamma=0.95")
    try:
        value = _load(raw) if raw.strip() else ""
    except _AnchorRefused:
        raise UserError(
            f"--set {shorten(text)}: {ANCHORS_REFUSED}; quote a value that starts with & or *"
        ) from None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise UserError(f"--set {shorten(text)}: the value is nested too deeply") from None
    return key, value


def assign(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `tree[a][b][c] = value` for `dotted` "a.b.c", making the mappings on the way."""
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {} if child is None else _as_dict(child)
            node[part] = child
        node = child
    node[parts[-1]] = value


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, dict):
        return dict(value)
    return {}


_TYPE_WORDS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "list_type": "a list",
    "finite_number": "a finite number",
}


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names accepted at `loc` inside `model` (for 'unknown key' messages)."""
    current: Any = model
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            break
        annotation = fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            break
    return sorted(getattr(current, "model_fields", {}))


def describe_error(
    error: ValidationError, model: type[BaseModel], origins: dict[str, str], owner: str
) -> str:
    """One line for the first validation error, naming the key and what it accepts."""
    errors = error.errors()
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(first["loc"])
    dotted = ".".join(str(part) for part in loc)
    key = shorten(dotted)
    if first["type"] == "value_error" and not dotted:  # the model's own check across fields
        sources = set(origins.values())
        prefix = f"{shorten(sources.pop(), 200)}: " if len(sources) == 1 else ""
        return f"{prefix}{owner}: {_reason(first)}"
    source = origins.get(dotted) or origins.get(dotted.split(".")[0], "")
    prefix = f"{shorten(source, 200)}: " if source else ""
    if first["type"] == "value_error":
        return f"{prefix}{key}: {_reason(first)} (got {_echo(first.get('input'))})"
    if first["type"] == "extra_forbidden":
        accepted = _field_names(model, loc[:-1])
        hint = suggest(str(loc[-1]), accepted)
        return f"{prefix}unknown key '{key}' for {owner}{hint}; accepted: {', '.join(accepted)}"
    if first["type"] == "missing":
        return f"{prefix}{key} is required for {owner}"
    expected = _TYPE_WORDS.get(first["type"])
    got = first.get("input")
    if expected is not None:
        return f"{prefix}{key} must be {expected} (got {_echo(got)})"
    message = shorten(str(first["msg"]).replace("Input should be", "must be"), 500)
    return f"{prefix}{key} {message[0].lower()}{message[1:]} (got {_echo(got)})"


def _echo(value: Any) -> str:
    """A user's value as errors quote it: its repr, cut to a readable length."""
    return shorten(repr(value))


def _reason(error: Any) -> str:
    """The message of a validator's ValueError, without pydantic's 'Value error, '."""
    return str(error["msg"]).removeprefix("Value error, ")


def validate(
    model: type[StrictModel], data: dict[str, Any], origins: dict[str, str], owner: str
) -> Any:
    """`model.model_validate(data)`, turning the first error into a one-line UserError."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise UserError(describe_error(error, model, origins, owner)) from None


def split_overrides(
    overrides: list[str], agent_config: type[BaseModel], run_settings: type[BaseModel]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """Sort `--set` items into (run settings, agent hyperparameters, origin of each key)."""
    run_part: dict[str, Any] = {}
    agent_part: dict[str, Any] = {}
    origins: dict[str, str] = {}
    agent_keys = set(agent_config.model_fields)
    run_keys = [key for key in run_settings.model_fields if key != "agent"]
    for item in overrides:
        key, value = parse_override(item)
        top = key.split(".")[0]
        if top in agent_keys:
            assign(agent_part, key, value)
        elif top in run_keys:
            assign(run_part, key, value)
        else:
            accepted = sorted(agent_keys) + run_keys
            raise UserError(
                f"--set {shorten(item)}: unknown key '{shorten(key)}'{suggest(top, accepted)}; "
                f"accepted: {', '.join(accepted)}"
            )
        origins[key] = f"--set {shorten(item)}"
    return run_part, agent_part, origins


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; `extra` wins."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
