"""The interface every agent plugin implements, and the space checks agents share.

An agent is a class registered under the `rlkit.agents` entry-point group. It declares
its hyperparameters as one `Config` model, refuses spaces it cannot handle before any
training starts, and owns its learning loop. See agents/qlearning.py for an example.

Optional members:
- `preset(observation_space) -> {"steps": int, "hparams": {...}}`: defaults for a kind
  of observation (DQN: Nature values for frames, tuned MLP values for vectors), merged
  under the YAML file, flags and `--set`. A preset that also takes an `action_space`
  keyword argument gets the env's action space too (TRPO: Discrete vs Box values).
- `vector_env = True`: the agent steps `run.vector_env` (settings.num_envs envs)
  instead of the single `run.env`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import gymnasium as gym

from rlkit.errors import UserError

if TYPE_CHECKING:
    from rlkit.config import StrictModel
    from rlkit.training import Run


@runtime_checkable
class Agent(Protocol):
    """What rlkit needs from an agent plugin."""

    summary: ClassVar[str]  # one line for `rlkit list agents`
    paper: ClassVar[str]  # the paper it implements
    default_steps: ClassVar[int]  # environment steps a run trains for by default
    Config: ClassVar[type[StrictModel]]  # typed hyperparameters with defaults

    def __init__(
        self,
        config: Any,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None: ...

    @classmethod
    def check_spaces(
        cls, env_id: str, observation_space: gym.Space[Any], action_space: gym.Space[Any]
    ) -> None:
        """Raise UserError naming the space when the agent cannot handle these spaces."""

    def learn(self, total_steps: int, run: Run) -> None:
        """Train until the agent's own step count reaches `total_steps` or `run.stop_requested`."""

    def act(self, observation: Any, state: Any) -> tuple[Any, Any]:
        """The evaluation policy: an action for `observation`, and the next recurrent state."""

    def initial_state(self) -> Any:
        """Recurrent state at the start of an episode (None for memoryless agents)."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tables/weights, optimiser, step count, RNG state."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @property
    def step(self) -> int:
        """Environment steps taken in training so far."""


AGENT_MEMBERS = (
    "summary",
    "paper",
    "default_steps",
    "Config",
    "check_spaces",
    "learn",
    "act",
    "initial_state",
    "state_dict",
    "load_state_dict",
    "step",
)


def require_space(
    agent: str, env_id: str, role: str, space: gym.Space[Any], accepted: tuple[type, ...]
) -> None:
    """UserError unless `space` is one of the `accepted` space types."""
    if isinstance(space, accepted):
        return
    names = " or ".join(kind.__name__ for kind in accepted)
    article = "an" if names[0] in "AEIOU" else "a"
    raise UserError(f"{agent} needs {article} {names} {role} space; {env_id} has {space}")
