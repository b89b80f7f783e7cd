"""The interface every agent plugin implements, and the one check of the spaces it takes.

An agent is a class registered under the `rlkit.agents` entry-point group. It declares
its hyperparameters as one `Config` model and the spaces it takes as data (`spaces`),
and owns its learning loop, which talks to the backbone through `rlkit.run.Run`. See
agents/qlearning.py for a whole agent, and docs/architecture.md for how a run drives it.

Optional members:
- `presets: tuple[rlkit.presets.Preset, ...]`: published values per task, matched by env
  id pattern, else by a spaces family (`agents/presets.py`), merged under the YAML file,
  flags and `--set`. An older `preset(observation_space, action_space) -> {"steps": int,
  "hparams": {...}}` classmethod is still read (as one unnamed family preset).
- `learns_from_signals = False`: the agent does not learn from per-step rewards (NES
  ranks whole-episode game scores), so Atari's reward clipping and lost-life terminals
  (`rlkit.signals`) do not apply to it, and the start banner says so.
- `check_spaces(env_id, observation_space, action_space)` (a classmethod): checks beyond
  `spaces`, raising UserError; plugins written before `spaces` existed may declare only it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym

from rlkit.config import StrictModel
from rlkit.errors import UserError, shorten, suggest
from rlkit.registry import agent_entry_points
from rlkit.run import Run

ANY_OBSERVATION: tuple[type[gym.Space[Any]], ...] = (gym.spaces.Space,)
"""Every observation space the encoders take (`rlkit.encoders`): any space with at least
one part a network can use (a Box, Discrete, MultiDiscrete or MultiBinary, alone or in a
Dict or Tuple)."""


@dataclass(frozen=True)
class Spaces:
    """The observation and action spaces an agent takes (SB3's `supported_action_spaces`).

    `observation`: space types, or `ANY_OBSERVATION` for an agent whose networks come
    from `rlkit.encoders`. `box_action_rank`: a Box action space must have this many
    dimensions (1 for the diagonal Gaussian policies), or None for any.
    """

    observation: tuple[type[gym.Space[Any]], ...]
    action: tuple[type[gym.Space[Any]], ...]
    box_action_rank: int | None = 1


POLICY_SPACES = Spaces(
    observation=ANY_OBSERVATION,
    action=(
        gym.spaces.Discrete,
        gym.spaces.Box,
        gym.spaces.MultiDiscrete,
        gym.spaces.MultiBinary,
    ),
)
"""What the policy-gradient agents and NES take: the spaces `rlkit.policies.ActorCritic` has
encoders and heads for."""


@runtime_checkable
class Agent(Protocol):
    """What rlkit needs from an agent plugin."""

    summary: ClassVar[str]  # one line for `rlkit list agents`
    paper: ClassVar[str]  # the paper it implements
    default_steps: ClassVar[int]  # environment steps a run trains for by default
    Config: ClassVar[type[StrictModel]]  # typed hyperparameters with defaults
    step: int  # environment steps taken in training so far

    def __init__(
        self,
        config: Any,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None: ...

    def learn(self, total_steps: int, run: Run) -> None:
        """Train until the agent's own step count reaches `total_steps` or `run.stop_requested`."""

    def act(self, observation: Any, state: Any) -> tuple[Any, Any]:
        """The evaluation policy: an action for `observation`, and the next recurrent state."""

    def initial_state(self) -> Any:
        """Recurrent state at the start of an episode (None for memoryless agents)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tables/weights, optimiser, step count, RNG state."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def load_agent(name: str) -> Any:
    """Import the named agent plugin (only that one) and check it implements `Agent`."""
    points = agent_entry_points()
    if not isinstance(name, str):
        raise UserError(f"agent must be an agent's name (got {shorten(repr(name))})")
    if name not in points:
        installed = ", ".join(sorted(points)) or "none"
        raise UserError(
            f"unknown agent '{shorten(name)}'{suggest(name, points)}; installed: {installed}"
        )
    point = points[name]
    try:
        cls = point.load()
    except Exception as error:  # a broken plugin must not crash the CLI with a traceback
        raise UserError(f"agent '{name}' ({point.value}) failed to import: {error}") from None
    missing = missing_members(cls)
    if missing:
        raise UserError(
            f"agent '{name}' ({point.value}) is not an rlkit agent: it lacks {', '.join(missing)}"
        )
    return cls


def missing_members(cls: type) -> list[str]:
    """Members of the `Agent` protocol that `cls` lacks (the protocol is the one list)."""
    members = [*Agent.__annotations__, *(n for n in vars(Agent) if not n.startswith("_"))]
    declared = {name for klass in cls.__mro__ for name in getattr(klass, "__annotations__", {})}
    found = [
        name for name in dict.fromkeys(members) if not hasattr(cls, name) and name not in declared
    ]
    if not hasattr(cls, "spaces") and not hasattr(cls, "check_spaces"):
        found.append("spaces")
    return found


def check_spaces(
    agent_name: str,
    agent_cls: Any,
    env_id: str,
    observation_space: gym.Space[Any],
    action_space: gym.Space[Any],
) -> None:
    """UserError naming the space when `agent_cls` cannot take these spaces."""
    spaces: Spaces | None = getattr(agent_cls, "spaces", None)
    if spaces is not None:
        _require(agent_name, env_id, "observation", observation_space, spaces.observation)
        if spaces.observation == ANY_OBSERVATION:
            _require_usable(agent_name, env_id, observation_space)
        _require(agent_name, env_id, "action", action_space, spaces.action)
        rank = spaces.box_action_rank
        shape = action_space.shape if isinstance(action_space, gym.spaces.Box) else None
        if shape is not None and rank is not None and len(shape) != rank:
            raise UserError(
                f"{agent_name} needs a {rank}-D Box action space; {env_id} has {action_space}"
            )
    own_check = getattr(agent_cls, "check_spaces", None)
    if own_check is not None:
        own_check(env_id, observation_space, action_space)


def _require_usable(agent: str, env_id: str, space: gym.Space[Any]) -> None:
    """UserError unless some part of `space` can feed a network."""
    from rlkit.observations import observation_parts

    if not any(part.kept for part in observation_parts(space)):
        raise UserError(
            f"{agent} needs an observation with a Box, Discrete, MultiDiscrete or MultiBinary "
            f"part; {env_id} has {space}"
        )


def _require(
    agent: str, env_id: str, role: str, space: gym.Space[Any], accepted: tuple[type, ...]
) -> None:
    """UserError unless `space` is one of the `accepted` space types."""
    if isinstance(space, accepted):
        return
    names = " or ".join(kind.__name__ for kind in accepted)
    article = "an" if names[0] in "AEIOU" else "a"
    raise UserError(f"{agent} needs {article} {names} {role} space; {env_id} has {space}")
