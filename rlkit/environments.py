"""Environment factory: any Gymnasium id, short names, `module:Id`, plugin environments.

    resolve_env_id("FrozenLake")      -> "FrozenLake-v1"  (newest registered version)
    resolve_env_id("mypkg.envs:Maze-v0") imports mypkg.envs, then -> "Maze-v0"
    resolve_env_id("minatar.gym:register_envs:MinAtar/Breakout-v1")
                                       # imports minatar.gym, calls register_envs()
    resolve_env_id("MinAtar/Breakout-v1")   # runs the MinAtar namespace plugin first
    make_env("Taxi-v4", seed=3)        -> a seeded env (env, action and observation spaces)
    make_env("CartPole-v1", seed=3, env_wrappers=[EnvWrapper(
        wrapper="gymnasium.wrappers:TimeLimit", kwargs={"max_episode_steps": 50})])

Plugin environments (entry-point group `rlkit.envs`, and namespace plugins of
Gymnasium's `gymnasium.envs` group; see rlkit.registry) are put into Gymnasium's
registry every time this module resolves a name, so the same call works in a fresh
subprocess or a Ray worker.

`env_kwargs` that the env rejects (an unknown keyword, a bad value: TypeError,
ValueError, AssertionError, KeyError or a gymnasium error while making or first
resetting it) are one-line UserErrors that name the keyword. `env_wrappers` are
Gymnasium wrappers named `module:Class`, imported by name (never evaluated), checked
(a gymnasium.Wrapper, keyword arguments its constructor takes) and applied in order
around the made env, inside `make_env`, so every process that makes the env applies
them; rlkit's own success reporting wraps them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np
from pydantic import Field

from rlkit.atari import is_atari, register_ale
from rlkit.config import StrictModel
from rlkit.errors import UserError, describe_exception, shorten, suggest
from rlkit.registry import (
    env_namespace_plugins,
    import_env_module,
    load_env_namespace,
    register_env_plugins,
)

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


# Installed packages whose ids exist once the package is imported, and that declare no
# plugin entry point: their ids work by name alone (`--env MiniGrid-Empty-5x5-v0`), as
# `module:Id` (`--env minigrid:MiniGrid-Empty-5x5-v0`) does for any package.
_REGISTERING_PACKAGES = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid"}


def _registering_package(env: str) -> str | None:
    """The installed package that registers `env` on import, if it is a known one."""
    for prefix, package in _REGISTERING_PACKAGES.items():
        if env.startswith(prefix) and importlib.util.find_spec(package) is not None:
            return package
    return None


def resolve_env_id(env: str) -> str:
    """The Gymnasium id for a full id, a short name or `module:Id`; UserError otherwise."""
    register_env_plugins()
    if ":" in env:
        env_id = import_env_module(env)
        if env_id not in gym.registry:
            raise UserError(
                f"--env {shorten(env)}: module imported but '{shorten(env_id)}' is not "
                "registered; the module must call gymnasium.register(id=...), or give "
                "module:function:Id"
            )
        return env_id
    if env in gym.registry:
        return env
    if is_atari(env) and register_ale() and env in gym.registry:
        return env
    namespace, _, _ = _split(env)
    plugin = env_namespace_plugins().get(namespace or env)
    if plugin is not None:
        load_env_namespace(plugin)
        if env in gym.registry:
            return env
    package = _registering_package(env)
    if package is not None:
        importlib.import_module(package)  # it registers its ids on import
        if env in gym.registry:
            return env
    names = short_names()
    by_lower = {name.lower(): env_id for name, env_id in names.items()}
    if env.lower() in by_lower:
        return by_lower[env.lower()]
    hint = suggest(env, [*gym.registry, *names])
    raise UserError(
        f"unknown env '{shorten(env)}'{hint}; give a Gymnasium id or short name "
        "(see `rlkit list envs`), module:Id or module:function:Id"
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


class CheckedEnv(gym.Wrapper[Any, Any, Any, Any]):
    """The outermost wrapper of every Gymnasium env rlkit makes: what the env (or a
    wrapper of the user's) does wrong becomes one line naming the env and the step, not a
    traceback from deep inside an agent. An exception raised in `step` or `reset`, the old
    gym API (4 values from `step`, a bare observation from `reset`), a Box observation of
    another shape than the env's declared space, and NaN or infinity in a reward or a
    floating-point Box observation are refused (learning would meet them as divergence
    and blame the learning rate)."""

    def __init__(self, env: gym.Env[Any, Any], env_id: str) -> None:
        super().__init__(env)
        self._env_id = env_id
        self._steps = 0
        space = env.observation_space
        self._shape = space.shape if isinstance(space, gym.spaces.Box) else None
        self._floating = self._shape is not None and np.issubdtype(space.dtype, np.floating)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        try:
            outcome = self.env.reset(**kwargs)
        except UserError:
            raise
        except Exception as error:
            raise UserError(
                f"env '{self._env_id}' failed to reset: {describe_exception(error)}"
            ) from None
        if not isinstance(outcome, tuple) or len(outcome) != 2:
            raise UserError(
                f"env '{self._env_id}': reset() returned {_outcome_kind(outcome)}; Gymnasium's "
                "API returns (observation, info): an env written for the old gym API needs "
                "updating"
            )
        self._check(outcome[0], "reset()")
        return outcome

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        try:
            outcome = self.env.step(action)
        except UserError:
            raise
        except Exception as error:
            if isinstance(error, ValueError) and "(expected 5, got 4)" in str(error):
                # Gymnasium's own wrappers (TimeLimit...) unpack the env's step first
                raise UserError(_old_api(self._env_id, "step() returned 4 values")) from None
            raise UserError(
                f"env '{self._env_id}' raised in step() after {self._steps} steps: "
                f"{describe_exception(error)}"
            ) from None
        self._steps += 1
        if not isinstance(outcome, tuple) or len(outcome) != 5:
            raise UserError(_old_api(self._env_id, f"step() returned {_outcome_kind(outcome)}"))
        self._check(outcome[0], f"step() after {self._steps} steps")
        reward = outcome[1]
        if not _finite(reward):  # before learning meets it as "divergence"
            raise UserError(
                f"env '{self._env_id}' returned the reward {reward} in step() after "
                f"{self._steps} steps; rewards must be finite numbers"
            )
        return outcome

    def render(self) -> Any:
        try:
            return self.env.render()
        except UserError:
            raise
        except Exception as error:
            raise UserError(
                f"env '{self._env_id}' failed to render a frame after {self._steps} steps: "
                f"{describe_exception(error)}"
            ) from None

    def _check(self, observation: Any, where: str) -> None:
        if self._shape is not None and np.shape(observation) != self._shape:
            raise UserError(
                f"env '{self._env_id}': {where} returned an observation of shape "
                f"{np.shape(observation)}; its observation space declares {self._shape}"
            )
        if self._floating and not self._within(observation):
            raise UserError(
                f"env '{self._env_id}': {where} returned an observation holding NaN (or "
                "infinity where its space is bounded); observations must be numbers"
            )

    def _within(self, observation: Any) -> bool:
        """No NaN, and infinity only where the declared space's bound is infinite."""
        values = np.asarray(observation)
        if np.isfinite(values).all():
            return True
        if np.isnan(values).any():
            return False
        space = self.env.observation_space
        assert isinstance(space, gym.spaces.Box)
        infinite = np.isinf(values)
        allowed = np.where(values > 0, np.isposinf(space.high), np.isneginf(space.low))
        return bool(np.all(allowed[infinite]))


def _finite(reward: Any) -> bool:
    """A reward holds no NaN or infinity (a number, or an array of them); anything that is
    no number at all is left for the agent to judge."""
    try:
        return bool(np.isfinite(np.asarray(reward, dtype=np.float64)).all())
    except (TypeError, ValueError):
        return True


def _old_api(env_id: str, what: str) -> str:
    return (
        f"env '{env_id}': {what}; Gymnasium's API returns 5 (observation, reward, "
        "terminated, truncated, info): an env written for the old gym API (4 values) needs "
        "updating"
    )


def _outcome_kind(outcome: Any) -> str:
    if isinstance(outcome, tuple):
        return f"{len(outcome)} values"
    return f"a {type(outcome).__name__}, not a tuple"


def _whole_games(settings: AtariSettings) -> AtariSettings:
    """Episodes are whole games: learners apply `episodic_life` (`rlkit.signals`)."""
    return settings.model_copy(update={"episodic_life": False})


class EnvWrapper(StrictModel):
    """A Gymnasium wrapper `make_env` applies: `module:Class` and its keyword arguments."""

    wrapper: str = Field(
        description="module:Class of a gymnasium.Wrapper, imported by name, e.g. "
        "gymnasium.wrappers:TimeLimit"
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="keyword arguments of the wrapper after the env, e.g. {max_episode_steps: 50}",
    )


WrapperSpecs = Sequence[EnvWrapper | Mapping[str, Any]]
"""`env_wrappers` as `make_env` takes them: models, or mappings that validate into them."""

_REJECTED = (TypeError, ValueError, AssertionError, KeyError, gym.error.Error)
"""What envs and wrappers raise for a bad keyword or value."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _accepted_keywords(target: Any) -> list[str]:
    """Keyword names `target`'s constructor accepts ([] when it takes **kwargs or is unknown)."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    if any(param.kind is inspect.Parameter.VAR_KEYWORD for param in parameters):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [param.name for param in parameters if param.kind in kinds]


def _env_keywords(env_id: str) -> list[str]:
    """Keywords the constructor of `env_id`'s entry point accepts ([] when unknown)."""
    creator: Any = gym.spec(env_id).entry_point
    if isinstance(creator, str):
        try:
            creator = gym.envs.registration.load_env_creator(creator)
        except Exception:  # listing keywords is a courtesy; never fail over it
            return []
    return _accepted_keywords(creator) if creator is not None else []


def _env_kwargs_error(env_id: str, env_kwargs: Mapping[str, Any], error: BaseException) -> str:
    """One line naming the keyword `error` is about (all of them if it cannot tell)."""
    message = str(error)
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", message)
    if unexpected is not None:
        keyword = unexpected[1]
        accepted = [name for name in _env_keywords(env_id) if name != "render_mode"]
        words = f"; accepted: {', '.join(accepted)}" if accepted else ""
        hint = suggest(keyword, accepted)
        return f"env_kwargs.{keyword}: {env_id} takes no keyword '{keyword}'{hint}{words}"
    named = [key for key in env_kwargs if re.search(rf"\b{re.escape(key)}\b", message)]
    if len(env_kwargs) == 1:
        named = list(env_kwargs)
    if named:
        given = ", ".join(f"env_kwargs.{key}={env_kwargs[key]!r}" for key in named)
    else:
        given = "env_kwargs " + ", ".join(f"{key}={value!r}" for key, value in env_kwargs.items())
    return f"{given} rejected by {env_id}: {_first_line(error)}"


def _wrapper_name(position: int, spec: EnvWrapper) -> str:
    return f"env_wrappers.{position} ({spec.wrapper})"


def load_env_wrappers(
    env_wrappers: WrapperSpecs | None,
) -> list[tuple[EnvWrapper, type[gym.Wrapper[Any, Any, Any, Any]]]]:
    """Validate `env_wrappers` and import their classes, by name (importlib; never eval).

    UserError, one line naming the wrapper, for a malformed entry, a module that does
    not import, a missing class, a class that is not a gymnasium.Wrapper, and keyword
    arguments its constructor does not take (or required ones missing). Call it before
    anything starts; `make_env` calls it too.
    """
    loaded = []
    for position, entry in enumerate(env_wrappers or ()):
        spec = entry if isinstance(entry, EnvWrapper) else _wrapper_spec(position, entry)
        where = _wrapper_name(position, spec)
        module_name, colon, class_name = spec.wrapper.partition(":")
        if not colon or not module_name or not class_name or ":" in class_name:
            raise UserError(f"{where}: give the wrapper as module:Class")
        try:
            module = importlib.import_module(module_name)
        except (ImportError, ValueError, TypeError) as error:  # ValueError, TypeError: '.x'
            raise UserError(
                f"{where}: cannot import module '{shorten(module_name)}' ({shorten(error)})"
            ) from None
        except Exception as error:  # the module's own code failed: say what and where
            raise UserError(
                f"{where}: importing module '{shorten(module_name)}' raised "
                f"{describe_exception(error)}"
            ) from None
        cls = getattr(module, class_name, None)
        if cls is None:
            names = [name for name in dir(module) if not name.startswith("_")]
            hint = suggest(class_name, names)
            raise UserError(f"{where}: module '{module_name}' has no '{class_name}'{hint}")
        if not (isinstance(cls, type) and issubclass(cls, gym.Wrapper)):
            raise UserError(f"{where}: {spec.wrapper} is not a gymnasium.Wrapper class")
        accepted = _accepted_keywords(cls)[1:]  # after the env; [] when it takes **kwargs
        words = f"; accepted: {', '.join(accepted)}" if accepted else ""
        unknown = [key for key in spec.kwargs if accepted and key not in accepted]
        if unknown:
            hint = suggest(unknown[0], accepted)
            raise UserError(f"{where}: no keyword '{unknown[0]}'{hint}{words}")
        try:
            inspect.signature(cls).bind(None, **spec.kwargs)
        except TypeError as error:
            raise UserError(f"{where}: kwargs {spec.kwargs}: {error}{words}") from None
        loaded.append((spec, cls))
    return loaded


def _wrapper_spec(position: int, entry: Mapping[str, Any]) -> EnvWrapper:
    from rlkit.config import validate

    return validate(EnvWrapper, dict(entry), {}, f"env_wrappers.{position}")  # type: ignore[no-any-return]


def _apply_wrappers(
    made: gym.Env[Any, Any],
    wrappers: list[tuple[EnvWrapper, type[gym.Wrapper[Any, Any, Any, Any]]]],
) -> gym.Env[Any, Any]:
    for position, (spec, cls) in enumerate(wrappers):
        try:
            made = cls(made, **spec.kwargs)
        except _REJECTED as error:
            where = _wrapper_name(position, spec)
            raise UserError(
                f"{where}: kwargs {spec.kwargs} rejected: {_first_line(error)}"
            ) from None
    return made


def make_env(
    env: str,
    *,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    atari: AtariSettings | None = None,
    render_mode: str | None = None,
    env_wrappers: WrapperSpecs | None = None,
) -> gym.Env[Any, Any]:
    """A seeded environment: env RNG, action space and observation space from `seed`.

    The env has been reset once with `seed`; agents call `env.reset()` without a seed
    to start each episode, so a run's episodes follow one RNG stream. ALE games get
    rlkit's Atari preprocessing (`atari`), with unclipped rewards. `env_wrappers` wrap
    the env in order (module docstring); ALE games take none.
    """
    env_id = resolve_env_id(env)
    wrappers = load_env_wrappers(env_wrappers)
    kwargs = dict(env_kwargs or {})
    if is_atari(env_id):
        from rlkit.atari import AtariSettings, make_atari_env

        if wrappers:
            raise UserError(
                f"env_wrappers apply to Gymnasium envs; {env_id} gets rlkit's Atari "
                "preprocessing, set by the atari.* settings"
            )
        settings = _whole_games(atari if atari is not None else AtariSettings())
        return make_atari_env(
            env_id, settings, seed=seed, render_mode=render_mode, clip_rewards=False
        )
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        made = gym.make(env_id, **kwargs)
    except _REJECTED as error:
        if env_kwargs:
            raise UserError(_env_kwargs_error(env_id, env_kwargs, error)) from None
        if isinstance(error, gym.error.Error):
            raise UserError(f"cannot make env '{env_id}': {shorten(error, 200)}") from None
        raise UserError(f"cannot make env '{env_id}': {describe_exception(error)}") from None
    except UserError:
        raise
    except Exception as error:  # a plugin module that fails to import, a broken constructor
        raise UserError(f"cannot make env '{env_id}': {describe_exception(error)}") from None
    made = _apply_wrappers(made, wrappers)
    _, name, _ = _split(env_id)
    if name in _SUCCESS_RULES:
        made = ReportSuccess(made, _SUCCESS_RULES[name])
    made = CheckedEnv(made, env_id)
    try:
        made.reset(seed=seed)
    except Exception as error:  # bad env_kwargs (a ValueError...), or the env's own bug
        made.close()
        if isinstance(error, UserError):
            raise
        if env_kwargs and isinstance(error, _REJECTED):
            raise UserError(_env_kwargs_error(env_id, env_kwargs, error)) from None
        raise UserError(f"env '{env_id}' failed to reset: {describe_exception(error)}") from None
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
    env_wrappers: WrapperSpecs | None = None,
) -> gym.vector.VectorEnv[Any, Any, Any]:
    """`num_envs` copies stepped together, autoreset on the step after an episode ends.

    ALE games use ale-py's native vector env (C++ threads, preprocessing built in);
    everything else a gymnasium SyncVectorEnv of `make_env` copies. Seed with
    `reset(seed=...)`; rewards are unclipped.
    """
    env_id = resolve_env_id(env)
    wrappers = [spec for spec, _ in load_env_wrappers(env_wrappers)]
    if is_atari(env_id):
        from rlkit.atari import AtariSettings, make_atari_vector_env

        if wrappers:
            raise UserError(
                f"env_wrappers apply to Gymnasium envs; {env_id} gets rlkit's Atari "
                "preprocessing, set by the atari.* settings"
            )
        settings = _whole_games(atari if atari is not None else AtariSettings())
        return make_atari_vector_env(
            env_id, settings, num_envs=num_envs, seed=0, clip_rewards=False
        )

    def factory(index: int) -> Callable[[], gym.Env[Any, Any]]:
        return lambda: make_env(env, seed=index, env_kwargs=env_kwargs, env_wrappers=wrappers)

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


@dataclass(frozen=True)
class EnvFactory:
    """The run's env, made the same way in every process (the learner, workers, Ray actors,
    `rlkit eval`): `factory(seed)` -> a seeded env; picklable, so it travels to workers.

        factory = EnvFactory.for_run(settings)
        env = factory(seed)
        envs = factory.vector(num_envs)
        eval_env = factory.whole_games()(seed, render_mode="rgb_array")
    """

    env: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    atari: AtariSettings | None = None
    env_wrappers: tuple[Any, ...] = ()

    @classmethod
    def for_run(cls, settings: Any) -> EnvFactory:
        """The factory of a run's settings (`rlkit.settings.RunSettings`)."""
        return cls(
            settings.env, dict(settings.env_kwargs), settings.atari, tuple(settings.env_wrappers)
        )

    def __call__(self, seed: int, render_mode: str | None = None) -> gym.Env[Any, Any]:
        return make_env(
            self.env,
            seed=seed,
            env_kwargs=self.env_kwargs,
            atari=self.atari,
            render_mode=render_mode,
            env_wrappers=list(self.env_wrappers),
        )

    def vector(self, num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
        """`num_envs` copies stepped together (`make_vector_env`)."""
        return make_vector_env(
            self.env,
            num_envs=num_envs,
            env_kwargs=self.env_kwargs,
            atari=self.atari,
            env_wrappers=list(self.env_wrappers),
        )

    def whole_games(self) -> EnvFactory:
        """The same env for evaluation: on Atari, whole games (no episodic life)."""
        if self.atari is None:
            return self
        return replace(self, atari=self.atari.model_copy(update={"episodic_life": False}))


# Task families `rlkit list envs` names, with what installs them (Gymnasium ids).
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "MuJoCo locomotion": (
        'pip install -e ".[mujoco]"',
        (
            "Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5",
            "Swimmer-v5", "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5",
        ),
    ),
    "Box2D": (
        'pip install -e ".[box2d]"',
        ("LunarLander-v3", "LunarLanderContinuous-v3", "BipedalWalker-v3", "CarRacing-v3"),
    ),
}  # fmt: skip


def family_status(ids: tuple[str, ...]) -> str:
    """'installed', or why the family's first env cannot be made (a missing package)."""
    try:
        gym.make(ids[0]).close()
    except Exception as error:  # a missing simulator package surfaces here
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"not installed ({shorten(reason)})"
    return "installed"
