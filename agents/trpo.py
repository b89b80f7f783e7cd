"""TRPO: Schulman et al. (2015), "Trust Region Policy Optimization", ICML.

Each iteration the rollout workers play the current policy for `steps_per_worker` steps
in each of their `envs_per_worker` envs (stepped together, acting in one batch); the
learner then maximises the importance-sampled surrogate
L(theta) = mean(pi_theta(a|s) / pi_old(a|s) * A) subject to mean KL(pi_old || pi_theta)
<= `max_kl`. The step direction is the natural gradient F^-1 g, found by conjugate
gradient on Fisher-vector products (the Hessian of the mean KL at theta_old, times a
vector, by double backpropagation; appendix C of the paper), scaled so that the
quadratic model of the KL equals `max_kl`, then shrunk by a backtracking line search
until the exact KL is within the limit and the surrogate improves (else no step).
Advantages are GAE (Schulman et al. 2016) with bootstrapping at time-limit
truncations, normalised per batch; the value function has its own network
(`ActorCritic(shared_torso=False)`) and is fitted after the policy step by Adam
minibatches on the TD(lambda) returns (the "separately fitted value function" of the
GAE paper, there by a trust-region method; Adam here, as in Stable-Baselines3).

Defaults are sb3-contrib's TRPO defaults (max KL 0.01, 15 CG iterations, CG damping
0.1, line-search shrink 0.8 for at most 10 tries, GAE lambda 0.95, discount 0.99,
critic Adam lr 1e-3 for 10 epochs of minibatches of 128). `preset` adds RL Baselines3
Zoo's tuned values (hyperparams/trpo.yml; its 2 envs are 2 workers, or 2 envs of one): for Discrete
actions CartPole-v1's (512 steps per env, CG damping 1e-3, GAE lambda 0.98, 20 critic
epochs of 512); for Box actions Pendulum-v1's (1024 steps per env, discount 0.9, 15
critic epochs) without the Zoo's gSDE exploration (Raffin et al. 2021), which rlkit
does not have: a plain Gaussian with a learned state-independent log-std starting at 0.

Deviations from the paper: the value network is fitted by Adam, not by a trust-region
regression; the Fisher matrix is damped (F + damping I, common practice). Hidden units
are tanh as in the paper (`activation`; with ReLU, CartPole took 4-10x the env steps to
a greedy 475 in benchmarks/pg_cartpole.py). The batch is `steps_per_worker` x
`envs_per_worker` x `workers` env steps; the last iteration shortens the segments so a
run ends within `envs_per_worker` x `workers` - 1 steps of its total.
A resumed run restarts its workers' envs on fresh episodes (seeded from the step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field, PositiveInt
from torch.distributions import Distribution, kl_divergence

from rlkit.agent import POLICY_SPACES, Spaces
from rlkit.config import StrictModel
from rlkit.encoders import EncoderSettings, encoder_field
from rlkit.networks import Activation
from rlkit.observations import Tree, index, reshape_leading
from rlkit.policies import (
    ActorCritic,
    GaussianHead,
    GreedyActing,
    flat_gradient,
    flat_parameters,
    set_flat_parameters,
)
from rlkit.presets import Preset
from rlkit.rollout import Carry, Rollout, collect_envs, gae
from rlkit.run import Run
from rlkit.scaling import RewardScaler
from rlkit.workers import TorchStream, WorkerSetup

from .presets import TRPO_PRESETS


class TRPOConfig(StrictModel):
    """TRPO hyperparameters (`--set name=value`); defaults are sb3-contrib's."""

    steps_per_worker: PositiveInt = Field(
        default=1024,
        description="steps each env of each worker plays per iteration (batch = x "
        "envs_per_worker x workers)",
    )
    envs_per_worker: PositiveInt = Field(
        default=1,
        description="envs each worker steps together, acting on them in one batch",
    )
    gamma: float = Field(default=0.99, ge=0.0, le=1.0, description="discount factor")
    gae_lambda: float = Field(
        default=0.95, ge=0.0, le=1.0, description="GAE lambda: 0 one-step TD, 1 Monte Carlo"
    )
    normalize_advantages: bool = Field(
        default=True, description="scale advantages to mean 0, std 1 per batch"
    )
    max_kl: float = Field(
        default=0.01, gt=0.0, description="trust region: largest mean KL(old || new) per step"
    )
    cg_iterations: PositiveInt = Field(
        default=15, description="conjugate-gradient iterations for the natural gradient"
    )
    cg_damping: float = Field(
        default=0.1, ge=0.0, description="added to the Fisher matrix's diagonal (F + damping I)"
    )
    line_search_shrink: float = Field(
        default=0.8, gt=0.0, lt=1.0, description="backtracking factor per line-search try"
    )
    line_search_steps: PositiveInt = Field(
        default=10, description="line-search tries before the step is rejected"
    )
    value_learning_rate: float = Field(default=1e-3, gt=0.0, description="value-function Adam lr")
    value_epochs: PositiveInt = Field(
        default=10, description="passes over the batch fitting the value function"
    )
    value_batch_size: PositiveInt = Field(
        default=128, description="samples per value-function Adam minibatch"
    )
    hidden: list[PositiveInt] = Field(
        default=[64, 64], description="MLP widths of the policy and of the value network"
    )
    activation: Activation = Field(
        default="tanh",
        description="hidden units: tanh (Schulman et al. 2015; SB3's MlpPolicy) or relu",
    )
    orthogonal_init: bool = Field(
        default=False,
        description="orthogonal torso layers (gain sqrt(2), zero biases), as SB3's ortho_init; "
        "false: PyTorch's default initialisation",
    )
    log_std_init: float = Field(
        default=0.0, description="initial log standard deviation of Gaussian (Box) policies"
    )
    normalize_observations: bool = Field(
        default=False,
        description="scale vector observations by running mean and std, clipped to +-10 "
        "(VecNormalize's obs half; the RL Zoo's MuJoCo runs)",
    )
    normalize_rewards: bool = Field(
        default=False,
        description="divide rewards by the running std of the discounted return for learning "
        "(VecNormalize's reward half); logged returns stay the env's",
    )
    encoder: EncoderSettings = encoder_field()


def conjugate_gradient(
    matrix_vector_product: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iterations: int,
    tolerance: float = 1e-10,
) -> torch.Tensor:
    """Approximate x = A^-1 b for symmetric positive-definite A given only v -> A v."""
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_norm = residual.dot(residual)
    for _ in range(iterations):
        if residual_norm <= tolerance:
            break
        product = matrix_vector_product(direction)
        alpha = residual_norm / direction.dot(product)
        x += alpha * direction
        residual -= alpha * product
        new_norm = residual.dot(residual)
        direction = residual + (new_norm / residual_norm) * direction
        residual_norm = new_norm
    return x


def fisher_vector_product(
    kl_gradient: torch.Tensor, params: list[torch.nn.Parameter], vector: torch.Tensor
) -> torch.Tensor:
    """F v: the gradient of (d KL / d theta) . v, with `kl_gradient` built with create_graph.

    At theta = theta_old the Hessian of the mean KL(pi_old || pi_theta) is the Fisher
    information matrix of the policy (Schulman et al. 2015, appendix C).
    """
    return flat_gradient(kl_gradient.dot(vector), params, retain_graph=True)


def policy_distribution(policy: ActorCritic, observations: Tree) -> Distribution:
    """The memoryless policy's distribution for a flat batch of observations [B, *obs]."""
    features = policy.encoder(observations)
    return policy.policy_head(features)  # type: ignore[no-any-return]


def trpo_step(
    policy: ActorCritic,
    batch: dict[str, torch.Tensor],
    cfg: TRPOConfig,
) -> dict[str, float]:
    """One trust-region policy update on `batch` (observations, actions, log_probs,
    advantages); changes the policy's parameters in place only on an accepted step.

    Returns train/kl, train/surrogate_improvement, train/line_search_steps (tries used;
    0 means no step was accepted) and train/step_accepted.
    """
    params = policy.policy_parameters()
    observations, actions = batch["observations"], batch["actions"]
    old_log_probs, advantages = batch["log_probs"], batch["advantages"]
    with torch.no_grad():
        old_distribution = policy_distribution(policy, observations)

    def surrogate(distribution: Distribution) -> torch.Tensor:
        ratio = torch.exp(distribution.log_prob(actions) - old_log_probs)
        return (ratio * advantages).mean()

    distribution = policy_distribution(policy, observations)
    surrogate_old = surrogate(distribution)
    gradient = flat_gradient(surrogate_old, params, retain_graph=True)
    kl = kl_divergence(old_distribution, distribution).mean()
    kl_gradient = flat_gradient(kl, params, create_graph=True)

    def damped_fisher(vector: torch.Tensor) -> torch.Tensor:
        return fisher_vector_product(kl_gradient, params, vector) + cfg.cg_damping * vector

    direction = conjugate_gradient(damped_fisher, gradient, cfg.cg_iterations)
    curvature = direction.dot(damped_fisher(direction)).clamp_min(1e-12)
    full_step = torch.sqrt(2.0 * cfg.max_kl / curvature) * direction
    start = flat_parameters(params)
    base = float(surrogate_old.detach())
    with torch.no_grad():
        for tries in range(1, cfg.line_search_steps + 1):
            set_flat_parameters(params, start + cfg.line_search_shrink ** (tries - 1) * full_step)
            candidate = policy_distribution(policy, observations)
            new_kl = float(kl_divergence(old_distribution, candidate).mean())
            improvement = float(surrogate(candidate)) - base
            if new_kl <= cfg.max_kl and improvement > 0.0:  # NaN fails both
                return step_metrics(new_kl, improvement, tries)
        set_flat_parameters(params, start)
    return step_metrics(0.0, 0.0, 0)


def step_metrics(kl: float, improvement: float, tries: int) -> dict[str, float]:
    """What `trpo_step` reports; `tries` 0 means the line search accepted no step."""
    return {
        "train/kl": kl,
        "train/surrogate_improvement": improvement,
        "train/line_search_steps": float(tries),
        "train/step_accepted": float(tries > 0),
    }


def fit_value(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    observations: Tree,
    returns: torch.Tensor,
    cfg: TRPOConfig,
    rng: np.random.Generator,
) -> float:
    """`value_epochs` passes of Adam minibatches on the squared error to `returns`."""
    count = len(returns)
    loss = torch.zeros(())
    for _ in range(cfg.value_epochs):
        order = torch.from_numpy(rng.permutation(count))
        for begin in range(0, count, cfg.value_batch_size):
            rows = order[begin : begin + cfg.value_batch_size]
            assert policy.value_encoder is not None
            features = policy.value_encoder(index(observations, rows))
            values = policy.value_head(features).squeeze(-1)
            loss = torch.nn.functional.mse_loss(values, returns[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    return float(loss.detach())


def build_policy(
    observation_space: gym.Space[Any], action_space: gym.Space[Any], cfg: TRPOConfig
) -> ActorCritic:
    """Separate policy and value networks (the value function is fitted on its own)."""
    return ActorCritic(
        observation_space,
        action_space,
        hidden=cfg.hidden,
        shared_torso=False,
        activation=cfg.activation,
        encoder=cfg.encoder,
        orthogonal_init=cfg.orthogonal_init,
        normalize_observations=cfg.normalize_observations,
    )


class TRPOWorker:
    """`envs_per_worker` envs and a policy copy; keeps its envs, episodes and sampling RNG
    across calls."""

    def __init__(self, setup: WorkerSetup, *, config: TRPOConfig) -> None:
        self.envs, resets = setup.start_envs(config.envs_per_worker)
        self.stream = TorchStream(setup.seed)
        self.signals = setup.signals  # Atari: clipped rewards, lost lives terminal
        with TorchStream.isolated():
            made = self.envs[0]
            self.policy = build_policy(made.observation_space, made.action_space, config)
        self.carries = [
            Carry.start(env, self.policy, seed=seed)
            for env, seed in zip(self.envs, resets, strict=True)
        ]

    def rollout(self, weights: dict[str, torch.Tensor], version: int, steps: int) -> Rollout:
        """`steps` steps in each env with the sent weights, continuing where the last call
        stopped; the envs act in one batch."""
        self.policy.load_state_dict(weights)
        with self.stream:
            rollout, self.carries = collect_envs(
                self.envs, self.policy, self.carries, steps, version=version, signals=self.signals
            )
        return rollout


class TRPO(GreedyActing):
    """Trust-region policy optimisation for Discrete or 1-D Box actions, Box observations."""

    summary: ClassVar[str] = "trust region policy optimisation: natural gradient + line search"
    paper: ClassVar[str] = "Schulman et al. 2015, Trust Region Policy Optimization (ICML)"
    default_steps: ClassVar[int] = 1_000_000
    Config: ClassVar[type[TRPOConfig]] = TRPOConfig
    step: int  # environment steps taken in training so far
    spaces: ClassVar[Spaces] = POLICY_SPACES
    presets: ClassVar[tuple[Preset, ...]] = TRPO_PRESETS

    def __init__(
        self,
        config: TRPOConfig,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None:
        """The policy and value networks (seeded), the value function's Adam."""
        self.config = config
        self.action_space = action_space
        torch.manual_seed(seed)
        self.policy = build_policy(observation_space, action_space, config)
        head = self.policy.policy_head
        if isinstance(head, GaussianHead):
            with torch.no_grad():
                head.log_std.fill_(config.log_std_init)
        self.value_optimizer = torch.optim.Adam(
            self.policy.value_parameters(), lr=config.value_learning_rate
        )
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.step = 0
        self._iterations = 0
        self.reward_scaler = RewardScaler(config.gamma) if config.normalize_rewards else None

    def learn(self, total_steps: int, run: Run) -> None:
        """Collect on the workers, take one trust-region step, fit the value function."""
        cfg = self.config
        with run.start_workers(TRPOWorker, self, self.seed, {"config": cfg}) as pool:
            while self.step < total_steps and not run.stop_requested:
                envs = pool.size * cfg.envs_per_worker
                remaining = math.ceil((total_steps - self.step) / envs)
                steps = min(cfg.steps_per_worker, remaining)
                weights = self.policy.state_dict()
                rollouts = pool.call_all("rollout", weights, self._iterations, steps)
                batch = Rollout.concatenate(rollouts)
                self.step += batch.steps
                for rollout in rollouts:
                    run.logger.log_episodes(self.step, rollout)
                metrics = self._update(batch)
                self._iterations += 1
                run.end_iteration(self, metrics)

    def _update(self, batch: Rollout) -> dict[str, float]:
        cfg = self.config
        rewards = batch.rewards
        if self.reward_scaler is not None:
            rewards = self.reward_scaler(rewards, batch.terminated | batch.truncated)
        advantages = gae(
            rewards,
            batch.values,
            batch.bootstrap_values,
            batch.terminated,
            batch.truncated,
            gamma=cfg.gamma,
            lam=cfg.gae_lambda,
        )
        returns = (advantages + batch.values).reshape(-1)
        advantages = advantages.reshape(-1)
        if cfg.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        observations = reshape_leading(batch.observations, 2, (-1,))
        flat = {
            "observations": observations,
            "actions": batch.actions.reshape(-1, *batch.actions.shape[2:]),
            "log_probs": batch.log_probs.reshape(-1),
            "advantages": advantages,
        }
        metrics = trpo_step(self.policy, flat, cfg)
        value_loss = fit_value(
            self.policy, self.value_optimizer, observations, returns, cfg, self.rng
        )
        if isinstance(observations, torch.Tensor):  # after both steps: what the workers used
            self.policy.update_normalizer(observations)
        return {**metrics, "train/value_loss": value_loss}

    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "value_optimizer": self.value_optimizer.state_dict(),
            "step": self.step,
            "iterations": self._iterations,
            "rng": self.rng.bit_generator.state,
            **({"reward_scaler": self.reward_scaler.state_dict()} if self.reward_scaler else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.step = int(state["step"])
        self._iterations = int(state["iterations"])
        self.rng.bit_generator.state = state["rng"]
        if self.reward_scaler is not None and "reward_scaler" in state:
            self.reward_scaler.load_state_dict(state["reward_scaler"])
