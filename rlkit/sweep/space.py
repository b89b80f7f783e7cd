"""A sweep's search space: each key (a run setting or `hparams.<name>`, nested with dots)
and its kind (`choice`, `grid`, `uniform`, `loguniform`, `randint`), checked against the
agent's config before any trial."""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from rlkit.errors import UserError, shorten, suggest
from rlkit.settings import RunSettings

# Run settings that the sweep sets for each trial itself.
SET_BY_SWEEP = ("name", "out_dir", "wandb", "wandb_group", "progress")
ACCEPTED_SPACES = (
    "{choice: [v, ...]}, {grid: [v, ...]}, {uniform: [low, high]}, "
    "{loguniform: [low, high]} with 0 < low < high, {randint: [low, high]} (high excluded)"
)


@dataclass(frozen=True)
class Space:
    """One search space: `kind` and its arguments, as written in the file."""

    kind: str
    values: list[Any]

    def candidates(self) -> list[Any]:
        """Values to validate before the sweep: every listed value, or the bounds."""
        if self.kind == "randint":
            return [self.values[0], self.values[1] - 1]
        return list(self.values)

    def to_tune(self) -> Any:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(self.values)
        if self.kind == "grid":
            return tune.grid_search(self.values)
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        return tune.randint(*self.values)


def search_space(key: str, raw: Any, agent_cls: Any, agent_name: str, where: str) -> Space:
    """The space of one search key, as written in the file; UserError if it cannot be."""
    takes = _check_key(key, agent_cls, agent_name, where)
    space = _parse_space(key, raw, where)
    if space.kind in ("uniform", "loguniform") and _takes_integers(takes):
        raise UserError(
            f"{where}: search {key}: {space.kind} samples floats and {key} takes "
            f"integers; give {{randint: [low, high]}} (high excluded) or {{choice: [...]}}"
        )
    return space


def _check_key(key: str, agent_cls: Any, agent_name: str, where: str) -> Any:
    """A search key names a run setting or `hparams.<hyperparameter>`, nested with dots;
    returns the type it takes (Any inside a mapping such as env_kwargs)."""
    parts = key.split(".")
    run_names = [name for name in RunSettings.model_fields if name not in (*SET_BY_SWEEP, "agent")]
    model: type[BaseModel]
    if parts[0] == "hparams" and len(parts) > 1:
        model, path, prefix = agent_cls.Config, parts[1:], "hparams."
    elif parts[0] in run_names:
        model, path, prefix = RunSettings, parts, ""
    else:
        names = [*run_names, *(f"hparams.{name}" for name in agent_cls.Config.model_fields)]
        raise UserError(
            f"{where}: search key '{shorten(key)}' is neither a run setting nor a {agent_name} "
            f"hyperparameter{suggest(key, names)}; accepted: {', '.join(names)}"
        )
    for depth, part in enumerate(path):
        fields = model.model_fields
        if part not in fields:
            names = [f"{prefix}{name}" for name in fields]
            raise UserError(
                f"{where}: search key '{shorten(key)}' is unknown{suggest(prefix + part, names)}; "
                f"accepted: {', '.join(names)}"
            )
        annotation = fields[part].annotation
        nested = _nested_model(annotation)
        if depth == len(path) - 1:
            return annotation
        if nested is None and _is_mapping(annotation):
            return Any
        if nested is None:
            raise UserError(
                f"{where}: search key '{shorten(key)}': {prefix}{part} is a single value; "
                f"accepted: {prefix}{part} itself"
            )
        model, prefix = nested, f"{prefix}{part}."
    return Any


def _takes_integers(annotation: Any) -> bool:
    """`int`, `PositiveInt`, `int | None` and the like: integers and no floats."""
    found: set[Any] = set()
    pending = [annotation]
    while pending:
        current = pending.pop()
        arguments = typing.get_args(current)
        if typing.get_origin(current) is typing.Annotated:
            pending.append(arguments[0])
        elif arguments and typing.get_origin(current) in (typing.Union, types.UnionType):
            pending.extend(arguments)
        else:
            found.add(current)
    return int in found and float not in found


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return annotation is dict or origin is dict or annotation is Any


def _parse_space(key: str, raw: Any, where: str) -> Space:
    def malformed(problem: str) -> UserError:
        return UserError(
            f"{where}: search {key}: {shorten(repr(raw))} is malformed ({problem}); "
            f"accepted: {ACCEPTED_SPACES}"
        )

    if not isinstance(raw, dict) or len(raw) != 1:
        raise malformed("give one kind with its values")
    ((kind, values),) = raw.items()
    if kind not in ("choice", "grid", "uniform", "loguniform", "randint"):
        raise malformed(f"unknown kind '{shorten(kind)}'{suggest(str(kind), ['choice', 'grid'])}")
    if not isinstance(values, list) or not values:
        raise malformed(f"{kind} needs a non-empty list")
    if kind in ("choice", "grid"):
        return Space(kind, values)
    if len(values) != 2:
        raise malformed(f"{kind} needs [low, high], got {len(values)} values")
    low, high = values
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not numbers or not all(math.isfinite(v) for v in values):
        raise malformed(f"{kind} bounds must be numbers")
    if kind == "randint" and not all(isinstance(v, int) for v in values):
        raise malformed("randint bounds must be integers")
    if not low < high:
        raise malformed(f"{kind} needs low < high")
    if kind == "loguniform" and low <= 0:
        raise malformed("loguniform needs 0 < low")
    return Space(kind, [low, high])
