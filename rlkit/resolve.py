"""One resolution of a run's configuration, for `rlkit run` and for every sweep trial.

A run's settings and its agent's hyperparameters come in layers, later wins, nested
fields merged field by field:

1. the defaults: `RunSettings`, the agent's `Config`, `steps = agent.default_steps`;
2. the agent's preset for the task (`rlkit.presets`: matched by env id, then by spaces;
   the `preset` setting names one or `none`): its run settings and hyperparameters, and
   its `steps` where no layer gives steps; `settings.preset` records the one used;
3. the caller's layers, lowest first: for `rlkit run` the `--config` file, the flags and
   `--set`; for a sweep trial its run block with the trial's searched values.

    resolved = resolve("dqn", DQN, [file_layer, flags_layer, overrides_layer])
    resolved.settings, resolved.agent_config     # RunSettings, DQNConfig

The env is made, seeded as the run seeds it, to read its spaces (the preset and the
agent's space check need them); the agent refuses spaces it cannot take here, before
anything is written. `keep_env=True` hands that env to the caller to train on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym

from rlkit.agent import check_spaces, load_agent
from rlkit.config import StrictModel, load_yaml, merge, split_overrides, validate
from rlkit.encoders import EncoderSettings, explicit_settings
from rlkit.environments import EnvFactory, resolve_env_id
from rlkit.errors import UserError, shorten
from rlkit.logger import resolve_wandb_mode
from rlkit.presets import NONE, Preset, choose, from_hook
from rlkit.seeding import run_seeds
from rlkit.settings import RunSettings

HPARAMS = "hparams"


@dataclass(frozen=True)
class Layer:
    """One source of a run's configuration, and where each value came from (for errors).

    `origins` maps a dotted key to its source, e.g. `"seed": "--seed"` or
    `"hparams.epsilon.end": "--set epsilon.end=0.05"`; hyperparameters take `hparams.`.
    """

    settings: dict[str, Any] = field(default_factory=dict)  # run settings, nested
    hparams: dict[str, Any] = field(default_factory=dict)  # the agent's hyperparameters
    origins: dict[str, str] = field(default_factory=dict)

    @classmethod
    def given(
        cls,
        origin: str,
        settings: dict[str, Any] | None = None,
        hparams: dict[str, Any] | None = None,
    ) -> Layer:
        """A layer whose values all come from `origin` (a file, a sweep's run block)."""
        settings, hparams = dict(settings or {}), dict(hparams or {})
        origins = {key: origin for key in settings}
        origins.update({f"{HPARAMS}.{key}": origin for key in hparams})
        return cls(settings, hparams, origins)


@dataclass(frozen=True)
class Resolved:
    settings: RunSettings
    agent_config: StrictModel
    env_id: str  # the Gymnasium id the env resolved to
    env: gym.Env[Any, Any] | None  # the seeded env, with keep_env (the run trains on it)
    from_preset: frozenset[str] = frozenset()  # run settings the preset chose (no layer did)


def resolve(
    agent: str, agent_cls: Any, layers: Sequence[Layer], *, keep_env: bool = False
) -> Resolved:
    """The run's validated settings and agent config: defaults < preset < `layers`."""
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        data = merge(data, layer.settings)
        origins.update(layer.origins)
    steps_given = "steps" in data
    data = {**data, "agent": agent}
    data.setdefault("steps", agent_cls.default_steps)
    if "env" not in data:
        raise UserError("no environment given; use --env ID (see `rlkit list envs`)")
    data["wandb"] = resolve_wandb_mode(data.get("wandb"))
    settings: RunSettings = validate(RunSettings, data, origins, "run settings")

    env_id = resolve_env_id(settings.env)
    if ":" not in settings.env:
        settings = settings.model_copy(update={"env": env_id})
    env = EnvFactory.for_run(settings)(run_seeds(settings.seed)["env"])
    try:
        observation_space, action_space = env.observation_space, env.action_space
        check_spaces(agent, agent_cls, env_id, observation_space, action_space)
        preset = task_preset(agent, agent_cls, settings, env_id, observation_space, action_space)
        hparams = agent_cls.Config().model_dump()
        from_preset: frozenset[str] = frozenset()
        if preset is not None:
            chosen = dict(preset.settings)
            if {"workers", "address"} & set(data):  # several workers, or a cluster, asked for:
                chosen.pop("pool", None)  # a preset's one in-process worker does not apply
                chosen.pop("threads", None)
            from_preset = frozenset(chosen).difference(data)
            hparams = merge(hparams, dict(preset.hparams))
            under = merge(chosen, data)
            if preset.steps is not None and not steps_given:
                under["steps"] = preset.steps
            settings = validate(
                RunSettings, {**under, "env": settings.env}, origins, "run settings"
            )
        settings = settings.model_copy(update={"preset": preset.name if preset else NONE})
        for layer in layers:
            hparams = merge(hparams, layer.hparams)
        prefix = f"{HPARAMS}."
        hparam_origins = {
            key.removeprefix(prefix): origin
            for key, origin in origins.items()
            if key.startswith(prefix)
        }
        agent_config = validate(agent_cls.Config, hparams, hparam_origins, agent)
        if isinstance(getattr(agent_config, "encoder", None), EncoderSettings):
            # the torso of each observation part, decided now and kept in config.yaml
            encoder = explicit_settings(observation_space, agent_config.encoder)
            agent_config = agent_config.model_copy(update={"encoder": encoder})
    except BaseException:
        env.close()
        raise
    if not keep_env:
        env.close()
    return Resolved(settings, agent_config, env_id, env if keep_env else None, from_preset)


def task_preset(
    agent: str,
    agent_cls: Any,
    settings: RunSettings,
    env_id: str,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
) -> Preset | None:
    """The agent's preset for this task (its `presets` table, or an older plugin's
    `preset(observation_space, action_space)` hook), as the `preset` setting asks."""
    table = getattr(agent_cls, "presets", None)
    if table is not None:
        return choose(agent, table, settings.preset, env_id, observation_space, action_space)
    if hasattr(agent_cls, "preset") and settings.preset != NONE:
        return from_hook(agent_cls, observation_space, action_space)
    return None


def chosen_agent(agent: str | None, config: str | Path | None) -> tuple[str, Any, list[Layer]]:
    """The agent to run (named on the command line, or by the `--config` file; both: they
    must agree), its class, and the file's layer (none without a file)."""
    layers: list[Layer] = []
    file_agent = None
    if config is not None:
        file_agent, layer = file_layer(config)
        layers.append(layer)
    agent_name = agent or file_agent
    if agent_name is None:
        raise UserError(
            "no agent given; name one (see `rlkit list agents`) "
            "or use --config FILE with an agent: key"
        )
    if agent and file_agent and agent != file_agent:
        raise UserError(f"config file '{config}' is for agent '{file_agent}', not '{agent}'")
    return agent_name, load_agent(agent_name), layers


def file_layer(path: str | Path) -> tuple[str | None, Layer]:
    """The agent named in a `--config` file (or None), and the file's layer."""
    data = load_yaml(path)
    origin = f"config file '{path}'"
    agent = data.pop("agent", None)
    if agent is not None and not isinstance(agent, str):
        raise UserError(
            f"{origin}: agent must be an agent's name, a string (got {shorten(repr(agent))}); "
            "see `rlkit list agents`"
        )
    hparams = data.pop(HPARAMS, None) or {}
    if not isinstance(hparams, dict):
        raise UserError(f"{origin}: hparams must be a mapping of hyperparameters")
    return agent, Layer.given(origin, data, hparams)


def flags_layer(flags: dict[str, Any]) -> Layer:
    """Run settings given as flags (`--steps`), each named after its flag in errors."""
    return Layer(settings=dict(flags), origins={key: _flag(key) for key in flags})


def overrides_layer(overrides: Sequence[str], agent_cls: Any) -> Layer:
    """`--set key=value` items: hyperparameters of the agent, or run settings by name."""
    settings, hparams, origins = split_overrides(list(overrides), agent_cls.Config, RunSettings)
    keyed = {
        (f"{HPARAMS}.{key}" if key.split(".")[0] in hparams else key): origin
        for key, origin in origins.items()
    }
    return Layer(settings, hparams, keyed)


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"
