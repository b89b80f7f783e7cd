"""Observation normalisation and reward scaling (the backbone's, for trpo, nes and rpg):
statistics merged by the learner in one order, in checkpoints, frozen in evaluation, the
same on Ray as in-process; and short MuJoCo learning runs with the presets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlkit
from rlkit.checkpoint import load as load_checkpoint
from rlkit.evaluation import evaluate
from rlkit.scaling import RewardScaler
from rlkit.training import evaluate_run
from tests.test_runs import learning_rows


def train(tmp_path: Path, agent: str, name: str, **settings: Any) -> rlkit.TrainResult:
    defaults: dict[str, Any] = {
        "seed": 0,
        "out_dir": str(tmp_path),
        "wandb": "disabled",
        "progress": False,
        "pool": "inprocess",
        "threads": 1,
        "name": name,
    }
    return rlkit.train(agent, **{**defaults, **settings})


def test_reward_scaler_divides_by_the_std_of_the_discounted_return() -> None:
    rewards = torch.tensor([[1.0, 2.0], [3.0, 0.0], [0.5, 1.0]])
    ends = torch.tensor([[False, True], [False, False], [True, False]])
    scaler = RewardScaler(gamma=0.5, clip=100.0, epsilon=0.0)
    scaled = scaler(rewards, ends)
    # running discounted returns, reset after each end: env 0: 1, 3.5, 2.25; env 1: 2, 0, 1
    seen = np.array([1.0, 3.5, 2.25, 2.0, 0.0, 1.0])
    prior = 1e-4  # the statistics start at mean 0, variance 1, count 1e-4
    mean = seen.mean() * 6 / (6 + prior)
    var = (1.0 * prior + seen.var() * 6 + seen.mean() ** 2 * prior * 6 / (6 + prior)) / (6 + prior)
    assert scaler.mean == pytest.approx(mean) and scaler.var == pytest.approx(var)
    assert torch.allclose(scaled, rewards / np.sqrt(var), atol=1e-6)
    assert scaler.returns is not None and scaler.returns.tolist() == [0.0, 1.0]


def test_reward_scaler_clips_and_resumes_from_its_state() -> None:
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 3, generator=generator) * 5 for _ in range(3)]
    ends = [torch.rand(8, 3, generator=generator) < 0.2 for _ in range(3)]
    whole = RewardScaler(gamma=0.9, clip=1.0)
    first = [whole(rewards, done) for rewards, done in zip(batches, ends, strict=True)]
    assert all(batch.abs().max() <= 1.0 for batch in first)
    resumed = RewardScaler(gamma=0.9, clip=1.0)
    resumed(batches[0], ends[0])
    copy = RewardScaler(gamma=0.9, clip=1.0)
    copy.load_state_dict(resumed.state_dict())
    assert (copy.mean, copy.var, copy.count) == (resumed.mean, resumed.var, resumed.count)
    assert copy.returns is None, "a resumed run's workers start fresh episodes"
    fresh = RewardScaler(gamma=0.9, clip=1.0)
    fresh.mean, fresh.var, fresh.count = resumed.mean, resumed.var, resumed.count
    assert torch.equal(copy(batches[1], ends[1]), fresh(batches[1], ends[1]))


def test_trpo_statistics_are_checkpointed_and_frozen_in_evaluation(tmp_path: Path) -> None:
    overrides = ["normalize_observations=true", "normalize_rewards=true", "steps_per_worker=256"]
    run = train(tmp_path, "trpo", "n", env="Pendulum-v1", steps=1024, overrides=overrides)
    saved = load_checkpoint(run.checkpoint)["agent"]
    mean, count = saved["policy"]["encoder.0.mean"], saved["policy"]["encoder.0.count"]
    assert float(count) == pytest.approx(1024 + 1e-4), "every observation the learner saw"
    assert mean.abs().max() > 0.01 and saved["reward_scaler"]["count"] > 1024
    loaded = rlkit.load(run.run_dir).agent
    normalizer = loaded.policy.normalizer
    assert torch.equal(normalizer.get_buffer("mean"), mean)
    env = gym.make("Pendulum-v1")
    env.reset(seed=5)
    first = evaluate(loaded, env, 2)
    env.reset(seed=5)
    second = evaluate(loaded, env, 2)
    assert first.mean == second.mean, "evaluation acts on the same frozen statistics"
    assert torch.equal(normalizer.get_buffer("mean"), mean)
    assert float(normalizer.get_buffer("count")) == float(count)
    resumed = rlkit.train(resume=run.run_dir, steps=1536, wandb="disabled", progress=False)
    after = load_checkpoint(resumed.checkpoint)["agent"]
    assert float(after["policy"]["encoder.0.count"]) == pytest.approx(1536 + 1e-4)


def test_a3c_statistics_merge_every_applied_segment_and_are_checkpointed(tmp_path: Path) -> None:
    overrides = ["normalize_observations=true", "apply_order=fixed"]
    run = train(tmp_path, "a3c", "n", env="Pendulum-v1", steps=2000, overrides=overrides)
    saved = load_checkpoint(run.checkpoint)["agent"]["policy"]
    # every gradient's segment is merged once, at the learner: every step of the run
    assert float(saved["encoder.0.count"]) == pytest.approx(2000 + 1e-4)
    assert saved["encoder.0.mean"].abs().max() > 0.01
    loaded = rlkit.load(run.run_dir).agent
    normalizer = loaded.policy.normalizer
    assert normalizer is not None and torch.equal(
        normalizer.get_buffer("mean"), saved["encoder.0.mean"]
    )
    env = gym.make("Pendulum-v1")
    env.reset(seed=5)
    evaluate(loaded, env, 1)
    assert torch.equal(normalizer.get_buffer("mean"), saved["encoder.0.mean"]), "frozen"
    plain = train(tmp_path, "a3c", "plain", env="Pendulum-v1", steps=200)
    assert "encoder.0.mean" not in load_checkpoint(plain.checkpoint)["agent"]["policy"]


def test_nes_statistics_come_from_recorded_episodes_and_are_checkpointed(tmp_path: Path) -> None:
    overrides = [
        "normalize_observations=true",
        "observation_fraction=0.5",
        "population=8",
        "hidden=[8]",
        "noise_table_size=100000",
    ]
    run = train(tmp_path, "nes", "n", env="Pendulum-v1", steps=8000, overrides=overrides)
    saved = load_checkpoint(run.checkpoint)["agent"]
    # Pendulum episodes are 200 steps: statistics grow by whole episodes, about half of them
    count = round(saved["observation_count"])  # float32: 1e-4 of prior count is lost
    assert 0 < count < 8000 and count % 200 == 0
    loaded = rlkit.load(run.run_dir).agent
    assert torch.equal(loaded.policy.normalizer.get_buffer("mean"), saved["observation_mean"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("agent", "overrides"),
    [
        ("trpo", ["normalize_observations=true", "normalize_rewards=true"]),
        ("a3c", ["normalize_observations=true", "apply_order=fixed"]),
        ("nes", ["normalize_observations=true", "observation_fraction=0.5", "population=8",
                 "hidden=[8]", "noise_table_size=100000"]),
    ],
)  # fmt: skip
def test_ray_runs_normalise_as_in_process_runs(
    tmp_path: Path, ray_local: float, agent: str, overrides: list[str]
) -> None:
    extra = ["steps_per_worker=512"] if agent == "trpo" else []
    runs = [
        train(
            tmp_path, agent, pool, env="Pendulum-v1", steps=4096, workers=2, pool=pool,
            overrides=[*overrides, *extra],
        )
        for pool in ("ray", "inprocess")
    ]  # fmt: skip
    assert learning_rows(runs[0].run_dir) == learning_rows(runs[1].run_dir)
    states = [load_checkpoint(run.checkpoint)["agent"] for run in runs]
    key = "policy" if agent in ("trpo", "a3c") else None
    mean = [state[key]["encoder.0.mean"] if key else state["observation_mean"] for state in states]
    assert torch.equal(mean[0], mean[1])


@pytest.mark.slow
def test_trpo_default_command_balances_inverted_pendulum(tmp_path: Path) -> None:
    """MuJoCo's InvertedPendulum-v5 has no preset: sb3-contrib's defaults reach the
    maximum return, 1000, in 40,000 steps (seed 0; 1,000 steps an episode at most)."""
    run = train(tmp_path, "trpo", "ip", env="InvertedPendulum-v5", steps=40_000)
    stats = evaluate_run(run.run_dir, episodes=10)
    assert stats.mean >= 950, stats.summary()
