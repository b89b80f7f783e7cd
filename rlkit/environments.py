"""Environment factory: any Gymnasium id, short names, `module:Id`, plugin environments.

    resolve_env_id("FrozenLake")      -> "FrozenLake-v1"  (newest registered version)
    resolve_env_id("mypkg.envs:Maze-v0") imports mypkg.envs, then -> "Maze-v0"
    make_env("Taxi-v4", seed=3)        -> a seeded env (env, action and observation spaces)

Plugin environments (entry-point group `rlkit.envs`) are put into Gymnasium's registry
every time this module resolves a name, so the same call works in a fresh subprocess or
a Ray worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym

from rlkit.atari import is_atari, register_ale
from rlkit.errors import UserError, shorten, suggest
from rlkit.registry import import_env_module, register_env_plugins

if TYPE_CHECKING:
    from rlkit.atari import AtariSettings

_VERSION = re.compile(r"^(?:(?P<namespace>[\w.-]+)/)?(?P<name>[\w.-]+?)(?:-v(?P<version>\d+))?$")


def _split(env_id: str) -> tuple[str | None, str, int | None]:
    match = _VERSION.match(env_id)
    if match is None:
        return None, env_id, None
    version = match["version"]
    return match["namespace"], match["name"], int(version) if version is not None else None


def short_names() -> dict[str, str]:
    """Short name -> newest registered id, for every id in Gymnasium's registry and ALE."""
    register_env_plugins()
    register_ale()
    newest: dict[str, tuple[int, str]] = {}
    for env_id in gym.registry:
        namespace, name, version = _split(env_id)
        if namespace is not None and namespace != "ALE":
            continue  # plugin namespaces keep their full id
        rank = version if version is not None else -1
        if name not in newest or rank > newest[name][0]:
            newest[name] = (rank, env_id)
    return {name: env_id for name, (_, env_id) in sorted(newest.items())}


def resolve_env_id(env: str) -> str:
    """The Gymnasium id for a full id, a short name or `module:Id`; UserError otherwise."""
    register_env_plugins()
    if ":" in env:
        env_id = import_env_module(env)
        if env_id not in gym.registry:
            raise UserError(
                f"--env {shorten(env)}: module imported but '{shorten(env_id)}' is not registered; "
                "the module must call gymnasium.register(id=...)"
            )
        return env_id
    if env in gym.registry:
        return env
    if is_atari(env) and register_ale() and env in gym.registry:
        return env
    names = short_names()
    by_lower = {name.lower(): env_id for name, env_id in names.items()}
    if env.lower() in by_lower:
        return by_lower[env.lower()]
    hint = suggest(env, [*gym.registry, *names])
    raise UserError(
        f"unknown env '{shorten(env)}'{hint}; give a Gymnasium id or short name "
        "(see `rlkit list envs`), or module:Id"
    )


SuccessRule = Callable[[SupportsFloat, bool], bool]

# Environments whose success is implicit in their reward: success = reached the goal.
_SUCCESS_RULES: dict[str, SuccessRule] = {
    "FrozenLake": lambda reward, terminated: terminated and float(reward) > 0,
    "FrozenLake8x8": lambda reward, terminated: terminated and float(reward) > 0,
}


class ReportSuccess(gym.Wrapper[Any, Any, Any, Any]):
    """Adds `info["is_success"]` at the end of each episode, by a per-environment rule."""

    def __init__(self, env: gym.Env[Any, Any], rule: SuccessRule) -> None:
        super().__init__(env)
        self._rule = rule

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, "is_success": self._rule(reward, terminated)}
        return observation, reward, terminated, truncated, info


def _whole_games(settings: AtariSettings) -> AtariSettings:
    """Episodes are whole games: learners apply `episodic_life` (rlkit.atari.LifeLossTerminals)."""
    return settings.model_copy(update={"episodic_life": False})


def make_env(
    env: str,
    *,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    atari: AtariSettings | None = None,
    render_mode: str | None = None,
) -> gym.Env[Any, Any]:
    """A seeded environment: env RNG, action space and observation space from `seed`.

    The env has been reset once with `seed`; agents call `env.reset()` without a seed
    to start each episode, so a run's episodes follow one RNG stream. ALE games get
    rlkit's Atari preprocessing (`atari`), with unclipped rewards.
    """
    env_id = resolve_env_id(env)
    kwargs = dict(env_kwargs or {})
    if is_atari(env_id):
        from rlkit.atari import AtariSettings, make_atari_env

        settings = _whole_games(atari if atari is not None else AtariSettings())
        return make_atari_env(
            env_id, settings, seed=seed, render_mode=render_mode, clip_rewards=False
        )
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        made = gym.make(env_id, **kwargs)
    except TypeError as error:
        raise UserError(
            f"env_kwargs {shorten(env_kwargs)} rejected by {env_id}: {shorten(error, 200)}"
        ) from None
    except gym.error.Error as error:
        raise UserError(f"cannot make env '{env_id}': {error}") from None
    _, name, _ = _split(env_id)
    if name in _SUCCESS_RULES:
        made = ReportSuccess(made, _SUCCESS_RULES[name])
    made.reset(seed=seed)
    made.action_space.seed(seed)
    made.observation_space.seed(seed)
    return made


def rng_state(env: gym.Env[Any, Any]) -> dict[str, Any]:
    """The env's RNG state (to resume a run on the same random stream)."""
    return dict(env.unwrapped.np_random.bit_generator.state)


def set_rng_state(env: gym.Env[Any, Any], state: dict[str, Any]) -> None:
    env.unwrapped.np_random.bit_generator.state = state


def make_vector_env(
    env: str,
    *,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    atari: AtariSettings | None = None,
) -> gym.vector.VectorEnv[Any, Any, Any]:
    """`num_envs` copies stepped together, autoreset on the step after an episode ends.

    ALE games use ale-py's native vector env (C++ threads, preprocessing built in);
    everything else a gymnasium SyncVectorEnv of `make_env` copies. Seed with
    `reset(seed=...)`; rewards are unclipped.
    """
    env_id = resolve_env_id(env)
    if is_atari(env_id):
        from rlkit.atari import AtariSettings, make_atari_vector_env

        settings = _whole_games(atari if atari is not None else AtariSettings())
        return make_atari_vector_env(
            env_id, settings, num_envs=num_envs, seed=0, clip_rewards=False
        )

    def factory(index: int) -> Callable[[], gym.Env[Any, Any]]:
        return lambda: make_env(env, seed=index, env_kwargs=env_kwargs)

    return gym.vector.SyncVectorEnv(
        [factory(index) for index in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
    )


def success_of(vector_info: dict[str, Any], index: int) -> bool | None:
    """`is_success` of env `index` from a vector env's info, None where it reports none."""
    mask = vector_info.get("_is_success")
    if mask is None or not mask[index]:
        return None
    return bool(vector_info["is_success"][index])
