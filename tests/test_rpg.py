"""RPG: the loss on hand-made episodes, episode batching, bad input, the learning targets.

Learning tests are `slow`, seeded, in-process with `threads=1` (each sized for the 2-core
CI); one small run goes through the Ray pool on the session's local Ray (`ray_local`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlkit
from rlkit.agents.rpg import RPGConfig, build_policy, episode_batch, rpg_loss, split_episodes
from rlkit.config import load_yaml
from rlkit.rollout import Rollout
from rlkit.training import evaluate_run
from tests.conftest import run_cli
from tests.spaces_envs import TEXT_ONLY_ID
from tests.test_cli_errors import assert_user_error
from tests.test_runs import learning_rows

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "rpg"


def train_from_config(tmp_path: Path, config: str, name: str, **settings: Any) -> rlkit.TrainResult:
    """A run through the CLI's code path from a shipped config, in-process, one thread."""
    defaults: dict[str, Any] = {
        "out_dir": str(tmp_path),
        "wandb": "disabled",
        "progress": False,
        "pool": "inprocess",
        "threads": 1,
        "name": name,
    }
    return rlkit.train(config=CONFIGS / config, **{**defaults, **settings})


# ---------------------------------------------------------------- unit tests

OBSERVATION_SPACE = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACTION_SPACE = gym.spaces.Discrete(2)


def hand_made_batch() -> dict[str, torch.Tensor]:
    """Two episodes of 3 and 2 steps: the first all good (+1), the second all bad (-1)."""
    generator = torch.Generator().manual_seed(0)
    return {
        "observations": torch.rand(3, 2, 3, generator=generator) * 2 - 1,
        "actions": torch.tensor([[0, 1], [1, 0], [0, 0]]),
        "returns": torch.tensor([[1.0, -1.0], [1.0, -1.0], [1.0, 0.0]]),
        "mask": torch.tensor([[True, True], [True, True], [True, False]]),
    }


def log_probs(policy: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        distribution, _, _ = policy(batch["observations"], None, torch.zeros_like(batch["mask"]))
        return distribution.log_prob(batch["actions"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("shared_torso", [False, True])
def test_gradient_raises_log_prob_of_positive_advantage_actions(shared_torso: bool) -> None:
    torch.manual_seed(0)
    cfg = RPGConfig(
        hidden=[8],
        lstm_size=8,
        shared_torso=shared_torso,
        normalize_advantages=False,
        entropy_coef=0.0,
        value_coef=0.0,
    )
    original = build_policy(OBSERVATION_SPACE, ACTION_SPACE, cfg)
    with torch.no_grad():  # a zero baseline: the advantages are the returns
        original.value_head.weight.zero_()
        original.value_head.bias.zero_()
    batch = hand_made_batch()
    before = log_probs(original, batch)

    def after_one_step(mask: torch.Tensor) -> torch.Tensor:
        policy = copy.deepcopy(original)
        loss, _ = rpg_loss(policy, {**batch, "mask": mask}, cfg)
        loss.backward()  # type: ignore[no-untyped-call]
        with torch.no_grad():
            for param in policy.parameters():
                if param.grad is not None:
                    param -= 0.05 * param.grad
        return log_probs(policy, batch) - before

    # each step alone: a gradient step makes its action more likely iff its advantage > 0
    for t, e in batch["mask"].nonzero().tolist():
        alone = torch.zeros_like(batch["mask"])
        alone[t, e] = True
        change = after_one_step(alone)[t, e]
        assert change > 0 if batch["returns"][t, e] > 0 else change < 0, (t, e, change)
    # the whole batch: the first-order objective sum_t A_t log pi(a_t | h_t) goes up
    change = after_one_step(batch["mask"])
    assert (change * batch["returns"])[batch["mask"]].sum() > 0


def test_baseline_gets_no_policy_gradient_and_gives_none() -> None:
    torch.manual_seed(0)
    batch = hand_made_batch()
    cfg = RPGConfig(hidden=[8], lstm_size=8, normalize_advantages=False, entropy_coef=0.0)
    policy = build_policy(OBSERVATION_SPACE, ACTION_SPACE, cfg)

    def gradients(value_coef: float) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        policy.zero_grad(set_to_none=True)
        loss, _ = rpg_loss(policy, batch, cfg.model_copy(update={"value_coef": value_coef}))
        loss.backward()  # type: ignore[no-untyped-call]
        policy_grads = [p.grad.clone() for p in policy.policy_parameters() if p.grad is not None]
        value_grads = [
            None if p.grad is None else p.grad.clone() for p in policy.value_parameters()
        ]
        return policy_grads, value_grads

    policy_only, value_from_policy = gradients(0.0)
    # the policy term sends nothing into the baseline (the advantage is detached) ...
    assert all(grad is None or not grad.any() for grad in value_from_policy)
    # ... and the regression term sends nothing into the policy (its own network)
    with_regression, value_grads = gradients(5.0)
    for a, b in zip(policy_only, with_regression, strict=True):
        torch.testing.assert_close(a, b)
    assert any(grad is not None and grad.any() for grad in value_grads)
    # the baseline still shifts the policy gradient: it is subtracted from the returns
    with torch.no_grad():
        policy.value_head.bias.fill_(0.5)
    shifted, _ = gradients(0.0)
    assert any(not torch.equal(a, b) for a, b in zip(policy_only, shifted, strict=True))


def test_episode_batch_has_one_column_per_episode_and_bootstraps_truncations() -> None:
    def rollout(rewards: list[float], starts: list[bool], terminated: list[bool]) -> Rollout:
        steps = len(rewards)
        truncated = [not t for t in terminated]
        truncated = [flag and (i == steps - 1 or starts[i + 1]) for i, flag in enumerate(truncated)]

        def column(values: list[Any], dtype: torch.dtype) -> torch.Tensor:
            return torch.tensor(values, dtype=dtype).unsqueeze(1)

        return Rollout(
            observations=torch.arange(steps, dtype=torch.float32).reshape(steps, 1, 1),
            actions=torch.zeros(steps, 1, dtype=torch.int64),
            log_probs=torch.zeros(steps, 1),
            values=torch.zeros(steps, 1),
            rewards=column(rewards, torch.float32),
            terminated=column(terminated, torch.bool),
            truncated=column(truncated, torch.bool),
            bootstrap_values=column([10.0 if flag else 0.0 for flag in truncated], torch.float32),
            episode_starts=column(starts, torch.bool),
            initial_state=None,
            steps=steps,
        )

    # worker 0: a terminated 2-step episode, then a 1-step episode cut by a time limit;
    # worker 1: a terminated 3-step episode
    first = rollout([1.0, 1.0, 1.0], [True, False, True], [False, True, False])
    second = rollout([0.0, 0.0, 2.0], [True, False, False], [False, False, True])
    assert [piece.length for piece in split_episodes(first)] == [2, 1]
    batch = episode_batch([first, second], gamma=0.5)
    assert batch["mask"].tolist() == [[True, True, True], [True, False, True], [False, False, True]]
    returns = batch["returns"]
    assert returns[:, 0].tolist()[:2] == [1.5, 1.0]  # 1 + 0.5 * 1; terminated
    assert returns[0, 1].item() == 1.0 + 0.5 * 10.0  # truncated: bootstraps from the baseline
    assert returns[:, 2].tolist() == [0.5, 1.0, 2.0]
    assert batch["observations"][:, 1, 0].tolist()[:1] == [2.0]  # the second episode's step


def test_memoryless_variant_and_configs_validate() -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        RPGConfig(**(load_yaml(path).get("hparams") or {}))
    policy = build_policy(OBSERVATION_SPACE, ACTION_SPACE, RPGConfig(lstm_size=None))
    assert policy.lstm is None and policy.initial_state(1) is None


def test_an_observation_no_network_can_use_is_refused_before_any_worker_starts(
    tmp_path: Path,
) -> None:
    result = run_cli(
        "run", "rpg", "--env", f"tests.spaces_envs:{TEXT_ONLY_ID}", "--out-dir", str(tmp_path)
    )
    assert_user_error(result, "rpg needs an observation with a Box, Discrete", "has Text(")
    assert not any(tmp_path.iterdir())  # nothing was written: no run, no worker


# ---------------------------------------------------------------- runs


@pytest.mark.slow
def test_ray_pool_learns_the_same_as_inprocess(tmp_path: Path, ray_local: float) -> None:
    settings: dict[str, Any] = {"env": "rlkit/TMaze-v0", "env_kwargs": {"length": 3}}
    settings.update(steps=600, seed=2, hparams={"steps_per_worker": 64})
    on_ray = train_from_config(tmp_path, "tmaze.yaml", "ray", pool="ray", **settings)
    in_process = train_from_config(tmp_path, "tmaze.yaml", "inprocess", **settings)
    assert on_ray.step == in_process.step == 600
    assert learning_rows(on_ray.run_dir) == learning_rows(in_process.run_dir)


def test_resume_continues_from_the_step_count_with_the_optimiser(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"env_kwargs": {"length": 3}, "seed": 3}
    first = train_from_config(tmp_path, "tmaze.yaml", "r", steps=400, **settings)
    assert first.step == 400
    resumed = rlkit.train(resume=first.run_dir, steps=800, wandb="disabled", progress=False)
    assert resumed.step == 800
    saved = torch.load(resumed.checkpoint, weights_only=True)
    assert saved["agent"]["step"] == 800
    assert saved["agent"]["optimizer"]["state"], "the Adam moments travel with the checkpoint"


@pytest.mark.slow
def test_lstm_solves_the_tmaze(tmp_path: Path) -> None:
    result = train_from_config(tmp_path, "tmaze.yaml", "lstm")
    stats = evaluate_run(result.run_dir, episodes=100)
    assert stats.success_rate is not None and stats.success_rate >= 0.95, stats.summary()


@pytest.mark.slow
def test_mlp_fails_the_tmaze_after_the_same_budget(tmp_path: Path) -> None:
    result = train_from_config(tmp_path, "tmaze.yaml", "mlp", hparams={"lstm_size": None})
    stats = evaluate_run(result.run_dir, episodes=100)
    assert stats.success_rate is not None and stats.success_rate <= 0.6, stats.summary()


@pytest.mark.long  # `pytest --long`: a learning check the golden files and RESULTS.md already cover
def test_lstm_balances_cartpole_without_velocities(tmp_path: Path) -> None:
    result = train_from_config(tmp_path, "cartpole_novel.yaml", "cartpole")
    stats = evaluate_run(result.run_dir, episodes=20)
    assert stats.mean >= 400, stats.summary()
