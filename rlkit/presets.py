"""Presets: published values for a task, chosen by the env's id, or by a family of spaces.

An agent lists its presets in order (`presets: ClassVar[tuple[Preset, ...]]`); a run
takes the first whose `envs` patterns match its env id (`Hopper-v*` matches
`Hopper-v5`), else the first whose `family` accepts its spaces (DQN's flat-observation
values), else none: the agent's `Config` defaults, which are its paper's or library's.
Never another task's tuned values.

    Preset("trpo/hopper", "RL Zoo trpo.yml, Hopper-v4", envs=("Hopper-v*",),
           steps=1_000_000, settings={"workers": 1}, hparams={"gamma": 0.99})

The run setting `preset` chooses: `auto` (the match above, the default), `none`, or a
preset's name. The chosen name is written to `config.yaml` and printed at the start.
A preset sits under the `--config` file, flags and `--set`: any of them overrides it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rlkit.errors import UserError, shorten, suggest

AUTO = "auto"
NONE = "none"
SpacesTest = Callable[[gym.Space[Any], gym.Space[Any]], bool]
RESERVED_SETTINGS = frozenset({"agent", "env", "seed", "name", "out_dir", "preset"})


@dataclass(frozen=True)
class Preset:
    """Values for the tasks `envs` names (fnmatch patterns on the env id) or, with no
    match by id, for the spaces `family` accepts; `source` cites where they come from."""

    name: str
    source: str
    envs: tuple[str, ...] = ()
    family: SpacesTest | None = None
    steps: int | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)  # run settings (workers, ...)
    hparams: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        reserved = RESERVED_SETTINGS.intersection(self.settings)
        if reserved:
            raise ValueError(f"preset {self.name} sets {sorted(reserved)}, which runs choose")

    def matches_id(self, env_id: str) -> bool:
        return any(fnmatch.fnmatchcase(env_id, pattern) for pattern in self.envs)


def choose(
    agent: str,
    presets: Sequence[Preset],
    wanted: str,
    env_id: str,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
) -> Preset | None:
    """The preset a run takes: `wanted` by name, or by `auto` matching; None for `none`."""
    if wanted == NONE:
        return None
    if wanted != AUTO:
        named = {preset.name: preset for preset in presets}
        if wanted not in named:
            accepted = ", ".join([AUTO, NONE, *named])
            raise UserError(
                f"preset '{shorten(wanted)}' is not one of {agent}'s"
                f"{suggest(wanted, list(named))}; accepted: {accepted}"
            )
        return named[wanted]
    for preset in presets:
        if preset.matches_id(env_id):
            return preset
    for preset in presets:
        if preset.family is not None and preset.family(observation_space, action_space):
            return preset
    return None


def from_hook(
    agent_cls: Any, observation_space: gym.Space[Any], action_space: gym.Space[Any]
) -> Preset | None:
    """A plugin's older `preset(observation_space, action_space)` hook as a Preset."""
    values = agent_cls.preset(observation_space, action_space) or {}
    if not values:
        return None
    return Preset(
        name="preset(spaces)",
        source=f"{agent_cls.__name__}.preset",
        steps=values.get("steps"),
        hparams=dict(values.get("hparams", {})),
    )
