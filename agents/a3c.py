"""A3C: Mnih et al. (2016), "Asynchronous methods for deep reinforcement learning", ICML.

Each worker holds its own env and network copy; it loads the weights it was sent, acts
`n_steps` (the paper's t_max), computes n-step returns bootstrapped from V(s_{t+n}) and
returns the gradient (not new weights) of, averaged over the segment,

    loss = -log pi(a_t|s_t) (R_t - V(s_t)) + value_coef (R_t - V(s_t))^2 - entropy_coef H(pi(s_t))

The learner applies each gradient with one shared optimiser and sends fresh weights back
to that worker only; the other workers go on acting with older weights, so gradients are
stale by a few updates, as in the paper's Hogwild-style threads (`train/staleness`).

Defaults. Atari (frames: Nature CNN, shared torso): the paper's t_max 5, discount 0.99,
entropy 0.01, shared RMSProp with decay 0.99 and the learning rate annealed linearly to 0;
lr 7e-4, RMSProp eps 1e-5, value coefficient 0.5 and gradient-norm clip 0.5 are OpenAI
Baselines' A2C values, the common A2C/A3C practice (the paper sampled lr per game and
used eps 0.1). A3C-LSTM: `lstm_size: 256` (the paper's LSTM after the torso; state
carried across segments, reset at episode starts, gradients through one segment).
Flat observations (`preset`): separate 64x64 tanh policy and value MLPs (SB3's A2C),
Adam (Kingma & Ba 2015) at 3e-3 annealed to 0, entropy 0 (RL Zoo's tuned A2C CartPole);
each worker steps 4 envs together, 10 steps each per gradient, gradient clip 1.0 and the
fixed order: tuned here on CartPole-v1 (benchmarks/RESULTS.md).

Several envs per worker (`envs_per_worker`, paper: 1) choose their actions in one
batched forward pass per step; the gradient averages over all of them. On small
networks that pass, not the env, is the cost of a step, so the batch is what makes a
CartPole worker fast (`rlkit.rollout.collect_envs`).

Gradient order: `apply_order: arrival` (default) applies each gradient the moment it
arrives, as the paper: fastest, and a Ray run is not reproducible from its seed (the
in-process pool is). `fixed` applies them in the order they were asked for: workers
still compute in parallel on stale weights (`workers - 1` updates), and a seeded run
learns the same on the Ray and in-process pools. Deliberate deviation: workers send
gradients to the learner rather than writing shared memory (the pool may span
machines); the learner's optimiser is the paper's "shared RMSProp".
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field, PositiveInt
from torch import nn

from rlkit.agent import POLICY_SPACES, Spaces
from rlkit.config import StrictModel
from rlkit.encoders import EncoderSettings, encoder_field
from rlkit.networks import Activation
from rlkit.policies import (
    ActorCritic,
    GreedyActing,
    flat_gradient,
    flat_parameters,
    load_network_state,
    load_statistics,
    network_state,
    normalizer_statistics,
    set_flat_gradients,
    set_flat_parameters,
)
from rlkit.presets import Preset
from rlkit.rollout import Carry, Rollout, collect_envs, discounted_returns
from rlkit.run import Run
from rlkit.workers import TorchStream, WorkerSetup

from .presets import A3C_FLAT_OBSERVATION, A3C_FLAT_OBSERVATION_STEPS, A3C_PRESETS


class A3CConfig(StrictModel):
    """A3C hyperparameters (`--set name=value`); defaults are the Atari values."""

    n_steps: PositiveInt = Field(
        default=5, description="env steps per gradient, the paper's t_max (Atari: 5)"
    )
    gamma: float = Field(default=0.99, ge=0.0, le=1.0, description="discount factor")
    learning_rate: float = Field(default=7e-4, gt=0.0, description="optimiser step size at start")
    anneal_lr: bool = Field(
        default=True, description="anneal the learning rate linearly to 0 over the run (paper)"
    )
    optimizer: Literal["rmsprop", "adam"] = Field(
        default="rmsprop", description="shared rmsprop (paper) or adam"
    )
    rmsprop_alpha: float = Field(
        default=0.99, gt=0.0, lt=1.0, description="RMSProp decay of the squared gradient"
    )
    optimizer_eps: float = Field(
        default=1e-5, gt=0.0, description="epsilon of RMSProp or Adam (Baselines: 1e-5)"
    )
    value_coef: float = Field(default=0.5, ge=0.0, description="weight of the value loss")
    entropy_coef: float = Field(
        default=0.01, ge=0.0, description="weight of the entropy bonus (paper: 0.01)"
    )
    max_grad_norm: float | None = Field(
        default=0.5, gt=0.0, description="clip each gradient's norm (None: no clipping)"
    )
    mlp_hidden: list[PositiveInt] = Field(
        default=[64, 64], description="hidden layers of the MLP torso (flat observations)"
    )
    activation: Activation = Field(
        default="relu", description="hidden units of the MLP torso: relu or tanh (SB3's A2C)"
    )
    shared_torso: bool = Field(
        default=True, description="policy and value share the torso (paper); False: two nets"
    )
    lstm_size: PositiveInt | None = Field(
        default=None, description="LSTM cell width after the torso (A3C-LSTM: 256); None: none"
    )
    envs_per_worker: PositiveInt = Field(
        default=1,
        description="envs each worker steps together, acting on them in one batch (paper: 1)",
    )
    apply_order: Literal["fixed", "arrival"] = Field(
        default="arrival",
        description="apply gradients in the order asked for (reproducible) or as they "
        "arrive (the paper's; a Ray run is then not reproducible)",
    )
    normalize_observations: bool = Field(
        default=False,
        description="normalise vector observations by running mean and std, clipped to +-10; "
        "each gradient's segment is merged in at the learner, in the order applied",
    )
    encoder: EncoderSettings = encoder_field()


# Tuned here on CartPole-v1 (see the module docstring and configs/a3c/cartpole.yaml).
FLAT_OBSERVATION_STEPS = A3C_FLAT_OBSERVATION_STEPS
FLAT_OBSERVATION_PRESET = A3C_FLAT_OBSERVATION


def a3c_loss(
    policy: ActorCritic, rollout: Rollout, returns: torch.Tensor, cfg: A3CConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Policy loss + value_coef * value loss - entropy_coef * entropy over one segment.

    `returns` [T, N] are the n-step returns; the advantage R_t - V(s_t) is a constant in
    the policy loss. Observations run through the network again, from the segment's
    initial LSTM state, so the gradient reaches the weights that acted.
    """
    distribution, values, _ = policy(
        rollout.observations, rollout.initial_state, rollout.episode_starts
    )
    advantages = (returns - values).detach()
    policy_loss = -(distribution.log_prob(rollout.actions) * advantages).mean()
    value_loss = (returns - values).pow(2).mean()
    entropy = distribution.entropy().mean()
    loss = policy_loss + cfg.value_coef * value_loss - cfg.entropy_coef * entropy
    parts = {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}
    metrics = {f"train/{name}": float(value.detach()) for name, value in parts.items()}
    return loss, metrics


@dataclass
class GradientResult:
    """What a worker returns: the gradient, the version it used, and what it saw."""

    gradients: np.ndarray  # every parameter's gradient, flattened and joined in order
    version: int
    steps: int
    metrics: dict[str, float]
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_successes: list[bool | None] = field(default_factory=list)
    pid: int = 0
    # with normalize_observations: (count, mean, variance) of the segment's observations
    observations: tuple[int, np.ndarray, np.ndarray] | None = None


def moments(observations: torch.Tensor) -> tuple[int, np.ndarray, np.ndarray]:
    """(count, mean, variance) of a segment's vector observations [T, N, size]."""
    flat = observations.reshape(-1, observations.shape[-1]).double()
    return len(flat), flat.mean(dim=0).numpy(), flat.var(dim=0, unbiased=False).numpy()


def build_network(
    config: A3CConfig, observation_space: gym.Space[Any], action_space: gym.Space[Any]
) -> ActorCritic:
    """Shared torso (Nature CNN for frames, else MLP), optional LSTM, both heads."""
    return ActorCritic(
        observation_space,
        action_space,
        hidden=config.mlp_hidden,
        activation=config.activation,
        lstm_size=config.lstm_size,
        shared_torso=config.shared_torso,
        encoder=config.encoder,
        normalize_observations=config.normalize_observations,
    )


class A3CWorker:
    """`envs_per_worker` envs and one network copy; `gradients` is all the learner calls."""

    def __init__(self, setup: WorkerSetup, *, config: A3CConfig) -> None:
        self.envs, resets = setup.start_envs(config.envs_per_worker)
        made = self.envs[0]
        self.stream = TorchStream(setup.seed)  # actions: the worker's own stream
        self.signals = setup.signals
        self.config = config
        with TorchStream.isolated():
            self.policy = build_network(config, made.observation_space, made.action_space)
        self.carries = [
            Carry.start(env, self.policy, seed=seed)
            for env, seed in zip(self.envs, resets, strict=True)
        ]
        self.parameters = list(self.policy.parameters())

    def collect(self, n_steps: int, version: int) -> Rollout:
        """`n_steps` steps in each env with the current weights: what the gradient is of
        (rewards and terminals as the run's learning signals form them)."""
        with self.stream:
            rollout, self.carries = collect_envs(
                self.envs,
                self.policy,
                self.carries,
                n_steps,
                version=version,
                acting_only=True,  # the loss recomputes values and log-probs
                signals=self.signals,
            )
        return rollout

    def gradients(
        self,
        weights: np.ndarray,
        version: int,
        n_steps: int,
        statistics: tuple[np.ndarray, np.ndarray, float] | None = None,
    ) -> GradientResult:
        """Load `weights` (and the observation statistics), act `n_steps` in each env,
        return the A3C loss's gradient on them."""
        set_flat_parameters(self.parameters, torch.tensor(weights))  # Ray's are read-only
        if statistics is not None:
            load_statistics(self.policy, statistics)
        rollout = self.collect(n_steps, version)
        returns = discounted_returns(
            rollout.rewards,
            rollout.terminated,
            rollout.truncated,
            rollout.bootstrap_values,
            self.config.gamma,
        )
        loss, metrics = a3c_loss(self.policy, rollout, returns, self.config)
        gradients = flat_gradient(loss, self.parameters)
        return GradientResult(
            gradients=gradients.numpy(),
            version=version,
            steps=rollout.steps,
            metrics=metrics,
            episode_returns=rollout.episode_returns,
            episode_lengths=rollout.episode_lengths,
            episode_successes=rollout.episode_successes,
            pid=os.getpid(),
            observations=None if statistics is None else moments(rollout.observations),
        )


class A3C(GreedyActing):
    """Asynchronous advantage actor-critic for Box observations, Discrete or 1-D Box actions."""

    summary: ClassVar[str] = "asynchronous advantage actor-critic on Ray gradient workers"
    paper: ClassVar[str] = "Mnih et al. 2016, Asynchronous methods for deep RL (ICML)"
    default_steps: ClassVar[int] = 10_000_000
    Config: ClassVar[type[A3CConfig]] = A3CConfig
    presets: ClassVar[tuple[Preset, ...]] = A3C_PRESETS
    step: int  # environment steps taken in training so far
    spaces: ClassVar[Spaces] = POLICY_SPACES

    def __init__(
        self,
        config: A3CConfig,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None:
        """The shared network (seeded) and the shared optimiser the workers' gradients feed."""
        torch.manual_seed(seed)  # the network's initial weights
        self.policy = build_network(config, observation_space, action_space)
        self.config = config
        self.action_space = action_space
        parameters = list(self.policy.parameters())
        self.optimizer: torch.optim.Optimizer
        if config.optimizer == "rmsprop":
            self.optimizer = torch.optim.RMSprop(
                parameters, lr=config.learning_rate, alpha=config.rmsprop_alpha,
                eps=config.optimizer_eps,
            )  # fmt: skip
        else:
            self.optimizer = torch.optim.Adam(
                parameters, lr=config.learning_rate, eps=config.optimizer_eps, fused=True
            )
        self.seed = seed
        self.step = 0
        self.version = 0  # gradients applied so far

    def _weights(self) -> np.ndarray:
        """The weights as one flat numpy array (`rlkit.policies.flat_parameters`): Ray and
        pickle move one array faster than a state dict, and workers copy it in place."""
        return flat_parameters(self.policy.parameters()).numpy()

    def _apply(self, result: GradientResult, total_steps: int) -> float:
        """One shared-optimiser step with a worker's gradient, then its segment's observations
        merged into the statistics (as trpo: after the step); returns the gradient norm."""
        # a copy (Ray's arrays are read-only, and clipping scales the gradients in place)
        set_flat_gradients(list(self.policy.parameters()), torch.tensor(result.gradients))
        clip = self.config.max_grad_norm
        norm = float(nn.utils.clip_grad_norm_(self.policy.parameters(), clip or float("inf")))
        rate = self.config.learning_rate
        if self.config.anneal_lr:
            rate *= max(0.0, 1.0 - self.step / total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.version += 1
        normalizer = self.policy.normalizer
        if normalizer is not None and result.observations is not None:
            count, mean, var = result.observations
            normalizer.merge(float(count), mean, var)
        return norm

    def learn(self, total_steps: int, run: Run) -> None:
        """Keep every worker computing a gradient; apply each, send that worker new weights."""
        cfg, settings = self.config, run.settings
        with run.start_workers(A3CWorker, self, self.seed, {"config": cfg}) as pool:
            order: deque[int] = deque()  # workers in the order their calls were submitted
            asked: dict[int, int] = {}  # steps each outstanding call will take
            arrived: dict[int, GradientResult] = {}

            def submit(index: int) -> None:
                left = total_steps - self.step - sum(asked.values())
                if left > 0 and not run.stop_requested:
                    # each env steps `length` times; the last segment may overshoot the
                    # budget by fewer than envs_per_worker steps
                    length = min(cfg.n_steps, -(-left // cfg.envs_per_worker))
                    asked[index] = length * cfg.envs_per_worker
                    pool.submit(
                        index,
                        "gradients",
                        self._weights(),
                        self.version,
                        length,
                        normalizer_statistics(self.policy),
                    )
                    order.append(index)

            for index in range(pool.size):
                submit(index)
            window: list[dict[str, float]] = []
            while order:
                if cfg.apply_order == "arrival":
                    index, result = pool.wait_any()
                    order.remove(index)
                else:
                    while order[0] not in arrived:
                        done, done_result = pool.wait_any()
                        arrived[done] = done_result
                    index = order.popleft()
                    result = arrived.pop(index)
                del asked[index]
                staleness = float(self.version - result.version)
                norm = self._apply(result, total_steps)
                previous = self.step
                self.step += result.steps
                window.append(
                    {**result.metrics, "train/grad_norm": norm, "train/staleness": staleness}
                )
                run.logger.log_episodes(self.step, result)
                submit(index)
                summary = None
                if self.step // settings.log_every > previous // settings.log_every:
                    summary, window = self._summary(window), []
                run.end_iteration(self, summary)

    def _summary(self, window: list[dict[str, float]]) -> dict[str, float]:
        metrics = {name: float(np.mean([row[name] for row in window])) for name in window[0]}
        metrics["train/staleness_max"] = max(row["train/staleness"] for row in window)
        metrics["train/learning_rate"] = float(self.optimizer.param_groups[0]["lr"])
        metrics["train/updates"] = float(self.version)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            **network_state(self.policy, self.optimizer),
            "step": self.step,
            "version": self.version,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_network_state(self.policy, self.optimizer, state)
        self.step = int(state["step"])
        self.version = int(state["version"])
        torch.set_rng_state(state["torch_rng"])
