"""TRPO: conjugate gradient, Fisher-vector products, the trust region, learning targets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import torch
from torch.distributions import kl_divergence

import rlkit
from rlkit.agents.trpo import (
    TRPOConfig,
    conjugate_gradient,
    fisher_vector_product,
    policy_distribution,
    trpo_step,
)
from rlkit.checkpoint import load as load_checkpoint
from rlkit.policies import ActorCritic, flat_gradient, flat_parameters
from rlkit.training import evaluate_run
from tests.conftest import run_cli
from tests.spaces_envs import TEXT_ONLY_ID
from tests.test_cli_errors import assert_user_error
from tests.test_runs import learning_rows

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "trpo"


def train(tmp_path: Path, name: str, **settings: Any) -> rlkit.TrainResult:
    defaults: dict[str, Any] = {
        "seed": 0,
        "out_dir": str(tmp_path),
        "wandb": "disabled",
        "progress": False,
        "pool": "inprocess",
        "threads": 1,
        "name": name,
    }
    return rlkit.train("trpo", **{**defaults, **settings})


# ---------------------------------------------------------------- unit tests


def test_conjugate_gradient_solves_a_known_spd_system() -> None:
    generator = torch.Generator().manual_seed(0)
    factor = torch.randn(8, 8, generator=generator, dtype=torch.float64)
    matrix = factor @ factor.T + 0.5 * torch.eye(8, dtype=torch.float64)
    b = torch.randn(8, generator=generator, dtype=torch.float64)
    x = conjugate_gradient(lambda v: matrix @ v, b, iterations=8)
    torch.testing.assert_close(x, torch.linalg.solve(matrix, b))
    # a 2x2 system by hand: [[4, 1], [1, 3]] x = [1, 2] -> x = [1/11, 7/11]
    small = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    x = conjugate_gradient(lambda v: small @ v, torch.tensor([1.0, 2.0], dtype=torch.float64), 2)
    torch.testing.assert_close(x, torch.tensor([1 / 11, 7 / 11], dtype=torch.float64))


def tiny_policy(action_space: gym.Space[Any], seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    policy = ActorCritic(
        gym.spaces.Box(-1.0, 1.0, (3,)), action_space, hidden=[4], shared_torso=False
    )
    with torch.no_grad():  # away from the near-uniform initial policy
        for param in policy.policy_parameters():
            param.copy_(0.7 * torch.randn_like(param))
    return policy


def kl_gradient_of(policy: ActorCritic, observations: torch.Tensor) -> torch.Tensor:
    params = policy.policy_parameters()
    with torch.no_grad():
        old = policy_distribution(policy, observations)
    kl = kl_divergence(old, policy_distribution(policy, observations)).mean()
    return flat_gradient(kl, params, create_graph=True)


def test_fisher_vector_product_equals_the_explicit_fisher_categorical() -> None:
    policy = tiny_policy(gym.spaces.Discrete(3))
    params = policy.policy_parameters()
    observations = torch.randn(5, 3)
    # F = mean over s of sum over a of pi(a|s) grad log pi(a|s) grad log pi(a|s)^T
    size = sum(p.numel() for p in params)
    fisher = torch.zeros(size, size)
    for observation in observations:
        distribution = policy_distribution(policy, observation[None])
        for action in range(3):
            log_prob = distribution.log_prob(torch.tensor([action]))[0]
            score = flat_gradient(log_prob, params, retain_graph=True)
            fisher += log_prob.exp().detach() * torch.outer(score, score) / len(observations)
    kl_gradient = kl_gradient_of(policy, observations)
    for seed in range(3):
        vector = torch.randn(size, generator=torch.Generator().manual_seed(seed))
        product = fisher_vector_product(kl_gradient, params, vector)
        torch.testing.assert_close(product, fisher @ vector, rtol=1e-4, atol=1e-5)


def test_fisher_vector_product_equals_the_explicit_fisher_gaussian() -> None:
    policy = tiny_policy(gym.spaces.Box(-1.0, 1.0, (2,)))
    params = policy.policy_parameters()
    observations = torch.randn(4, 3)
    # a diagonal Gaussian in (mean, log std) has Fisher diag(1 / std^2, 2); chain rule
    size = sum(p.numel() for p in params)
    fisher = torch.zeros(size, size)
    for observation in observations:
        distribution = policy_distribution(policy, observation[None])
        mean, std = distribution.mean[0], distribution.stddev[0]
        outputs = torch.cat([mean, std.log()])
        jacobian = torch.stack(
            [flat_gradient(value, params, retain_graph=True) for value in outputs]
        )
        inner = torch.diag(torch.cat([1 / std.detach() ** 2, torch.full_like(std, 2.0)]))
        fisher += jacobian.T @ inner @ jacobian / len(observations)
    kl_gradient = kl_gradient_of(policy, observations)
    vector = torch.randn(size, generator=torch.Generator().manual_seed(0))
    product = fisher_vector_product(kl_gradient, params, vector)
    torch.testing.assert_close(product, fisher @ vector, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("max_kl", [0.001, 0.05, 1.0])
def test_every_accepted_step_satisfies_the_kl_limit(max_kl: float) -> None:
    config = TRPOConfig(max_kl=max_kl, cg_damping=0.0, line_search_steps=15)
    tries_used = []
    for seed in range(12):
        action_space: gym.Space[Any] = (
            gym.spaces.Discrete(4) if seed % 2 else gym.spaces.Box(-1.0, 1.0, (2,))
        )
        policy = tiny_policy(action_space, seed)
        observations = torch.randn(64, 3)
        with torch.no_grad():
            old = policy_distribution(policy, observations)
            actions = old.sample()
            log_probs = old.log_prob(actions)
        advantages = torch.randn(64) + 3.0 * (observations[:, 0] > 0)
        before = copy.deepcopy(policy)
        batch = {
            "observations": observations,
            "actions": actions,
            "log_probs": log_probs,
            "advantages": advantages,
        }
        metrics = trpo_step(policy, batch, config)
        with torch.no_grad():
            new = policy_distribution(policy, observations)
            kl = float(kl_divergence(old, new).mean())
            surrogate_old = float(advantages.mean())
            surrogate_new = float(
                (torch.exp(new.log_prob(actions) - log_probs) * advantages).mean()
            )
        if metrics["train/step_accepted"]:
            assert kl <= max_kl
            assert kl == pytest.approx(metrics["train/kl"], rel=1e-4, abs=1e-7)
            assert surrogate_new > surrogate_old
            tries_used.append(metrics["train/line_search_steps"])
        else:  # a rejected step leaves the policy as it was
            torch.testing.assert_close(
                flat_parameters(policy.policy_parameters()),
                flat_parameters(before.policy_parameters()),
            )
    assert len(tries_used) >= 10, "most steps on a clear signal should be accepted"
    if max_kl == 1.0:  # the quadratic model overshoots: the line search had to backtrack
        assert max(tries_used) > 1


def test_refuses_an_observation_no_network_can_use_before_any_worker_starts(
    tmp_path: Path,
) -> None:
    result = run_cli(
        "run", "trpo", "--env", f"tests.spaces_envs:{TEXT_ONLY_ID}", "--out-dir", str(tmp_path),
        cwd=ROOT,
    )  # fmt: skip
    assert_user_error(result, "trpo needs an observation with a Box, Discrete", "Text(")
    assert "workers" not in result.stderr
    assert not any(tmp_path.iterdir())


def test_refuses_a_multi_dimensional_box_action(tmp_path: Path) -> None:
    from rlkit.agent import check_spaces
    from rlkit.agents.trpo import TRPO
    from rlkit.errors import UserError

    box, square = gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2, 2))
    with pytest.raises(UserError, match="trpo needs a 1-D Box action space; X-v0 has Box"):
        check_spaces("trpo", TRPO, "X-v0", box, square)


# ---------------------------------------------------------------- runs


def test_resume_continues_from_the_step_count_with_the_optimiser_state(tmp_path: Path) -> None:
    # CartPole preset: 1 worker x 2 envs x 512 steps per iteration, 20 epochs x 2 value
    # minibatches
    first = train(tmp_path, "r", env="CartPole-v1", steps=2048, checkpoint_every=1024)
    assert first.step == 2048
    saved = load_checkpoint(first.checkpoint)["agent"]
    adam_steps = {float(s["step"]) for s in saved["value_optimizer"]["state"].values()}
    assert adam_steps == {2 * 40.0}
    resumed = rlkit.train(resume=first.run_dir, steps=4096, wandb="disabled", progress=False)
    assert resumed.step == 4096
    agent = rlkit.load(resumed.run_dir).agent
    assert agent.step == 4096 and agent._iterations == 4
    state = agent.value_optimizer.state_dict()["state"]
    # 80 Adam steps before the checkpoint + 80 after: the moments carried over
    assert {float(s["step"]) for s in state.values()} == {4 * 40.0}
    steps = [row["step"] for row in learning_rows(resumed.run_dir) if "train/kl" in row]
    assert steps == [1024, 2048, 3072, 4096]


def test_a_worker_steps_several_envs_into_one_batch(tmp_path: Path) -> None:
    # 1 worker x 2 envs x 512 steps: the same 1,024-step batch per iteration as 2 x 1;
    # the last iteration is cut to 2 x 488 so the run ends on its total
    run = train(
        tmp_path, "e", env="CartPole-v1", steps=2000, workers=1, overrides=["envs_per_worker=2"]
    )
    rows = learning_rows(run.run_dir)
    assert run.step == 2000
    assert [row["step"] for row in rows if "train/kl" in row] == [1024, 2000]
    state = rlkit.load(run.run_dir).agent.value_optimizer.state_dict()["state"]
    assert {float(s["step"]) for s in state.values()} == {2 * 40.0}  # 2 minibatches x 20
    played = sum(
        row["episode/length"] for row in rows if row["step"] == 1024 and "episode/length" in row
    )
    assert 512 < played <= 1024  # more than one env's 512 steps finished episodes


@pytest.mark.slow
def test_ray_pool_learns_the_same_as_inprocess(tmp_path: Path, ray_local: float) -> None:
    runs = [
        train(
            tmp_path, pool, env="CartPole-v1", steps=3072, workers=2, pool=pool,
            overrides=["envs_per_worker=1"],
        )
        for pool in ("ray", "inprocess")
    ]  # fmt: skip
    rows = [learning_rows(run.run_dir) for run in runs]
    assert rows[0] == rows[1]
    assert sum("train/kl" in row for row in rows[0]) == 3
    assert all(0.0 < row["train/kl"] <= 0.01 for row in rows[0] if "train/kl" in row)


@pytest.mark.slow
def test_cartpole_reaches_475(tmp_path: Path) -> None:
    result = train(tmp_path, "cartpole", config=str(CONFIGS / "cartpole.yaml"))
    assert result.step == 100_000
    rows = learning_rows(result.run_dir)
    kls = [row["train/kl"] for row in rows if "train/kl" in row]
    assert len(kls) == 100_000 // 1024 + 1 and max(kls) <= 0.01
    stats = evaluate_run(result.run_dir, episodes=20)
    assert stats.mean >= 475, stats.summary()


@pytest.mark.long  # `pytest --long`: a learning check the golden files and RESULTS.md already cover
def test_pendulum_reaches_minus_250(tmp_path: Path) -> None:
    result = train(tmp_path, "pendulum", config=str(CONFIGS / "pendulum.yaml"))
    assert result.step == 100_000
    stats = evaluate_run(result.run_dir, episodes=20)
    assert stats.mean >= -250, stats.summary()


def test_presets_follow_the_task_not_the_action_space() -> None:
    from rlkit.agents.trpo import TRPO
    from rlkit.presets import choose

    box, line = gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Box(-2.0, 2.0, (1,))
    discrete = gym.spaces.Discrete(2)

    def name(env_id: str, action: gym.Space[Any]) -> str | None:
        preset = choose("trpo", TRPO.presets, "auto", env_id, box, action)
        return None if preset is None else preset.name

    assert name("CartPole-v1", discrete) == "trpo/cartpole"
    assert name("Pendulum-v1", line) == "trpo/pendulum"
    assert name("Hopper-v5", line) == "trpo/mujoco"
    assert name("HalfCheetah-v5", line) == "trpo/halfcheetah"
    assert name("LunarLanderContinuous-v3", line) == "trpo/lunarlander-continuous"
    assert name("LunarLander-v3", discrete) == "trpo/lunarlander"
    # no entry: the library's defaults, not another task's tuned values
    assert name("MountainCarContinuous-v0", line) is None
    assert name("ALE/Breakout-v5", discrete) is None
