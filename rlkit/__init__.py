"""rlkit: reinforcement-learning agents on a small shared backbone.

The Python API mirrors the command line::

    import rlkit
    result = rlkit.train("qlearning", env="FrozenLake-v1", steps=200_000, seed=0)
    agent = rlkit.load(result.run_dir)
    print(rlkit.evaluate(result.run_dir, episodes=100))

Importing rlkit imports neither torch, ray nor wandb; they load when a run needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["UserError", "__version__", "evaluate", "load", "train"]

if TYPE_CHECKING:
    from rlkit.errors import UserError
    from rlkit.evaluation import EvalStats
    from rlkit.training import LoadedRun, TrainResult


def train(agent: str | None = None, **settings: Any) -> TrainResult:
    """Train an agent; same settings as `rlkit run` (see `rlkit.training.train`)."""
    from rlkit.training import train as _train

    return _train(agent, **settings)


def load(run_dir: str, checkpoint: str | None = None, *, trust_modules: bool = False) -> LoadedRun:
    """Load a run's agent from its newest loadable (or the given) checkpoint;
    `.agent.act(...)` acts. `trust_modules`: see `rlkit.trust`."""
    from rlkit.training import load as _load

    return _load(run_dir, checkpoint, trust_modules=trust_modules)


def evaluate(
    run_dir: str,
    episodes: int = 100,
    checkpoint: str | None = None,
    seed: int | None = None,
    *,
    trust_modules: bool = False,
) -> EvalStats:
    """Evaluate a run's agent (its evaluation policy) on fresh episodes. `trust_modules`:
    see `rlkit.trust`."""
    from rlkit.training import evaluate_run

    return evaluate_run(
        run_dir, episodes=episodes, checkpoint=checkpoint, seed=seed, trust_modules=trust_modules
    )


def __getattr__(name: str) -> Any:
    if name == "UserError":
        from rlkit.errors import UserError

        return UserError
    raise AttributeError(f"module 'rlkit' has no attribute {name!r}")
