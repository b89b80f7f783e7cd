"""RPG: Wierstra, Foerster, Peters & Schmidhuber (2009), "Recurrent policy gradients",
Logic Journal of the IGPL 18(5) (first as "Solving deep memory POMDPs with recurrent
policy gradients", ICANN 2007).

REINFORCE (Williams 1992) through an LSTM policy (Hochreiter & Schmidhuber 1997) that
sees the whole observation history: the gradient of the expected return is estimated
from whole episodes as

    grad J = E[ sum_t grad log pi(a_t | o_1..o_t) (G_t - b_t) ],

with G_t the Monte-Carlo return from step t, and grad log pi computed by
backpropagation through time over the entire episode (the LSTM starts every episode
from a zero state). Each iteration the rollout workers play the current policy for at
least `steps_per_worker` steps each, always finishing the episode they are in; the
learner re-runs the LSTM over the stored episodes (one padded batch, one column per
episode), recomputes the log-probabilities and takes one Adam step on

    loss = -mean_t log pi(a_t | h_t) A_t - entropy_coef * mean_t H(pi(. | h_t))
           + value_coef * mean_t (V(h_t) - G_t)^2,    A_t = G_t - V(h_t) (held constant).

The baseline b_t = V(h_t) is a learned value function, regressed on the returns; it is
subtracted from the returns and detached, so it lowers the variance of the policy
gradient without entering it. By default (`shared_torso: false`) it has its own
encoder and LSTM, so the value regression never changes the policy's memory either.
Episodes cut by a time limit bootstrap their returns from the baseline's value of the
final observation (Pardo et al. 2018). When the steps left fit in one batch, the last
iteration cuts its episodes at the budget, and they bootstrap the same way (an earlier
iteration, finishing whole episodes, may pass the budget by less than one episode).

Deviations from the paper, all configurable: the baseline is a learned value head (as
in A3C-LSTM, Mnih et al. 2016) in place of the paper's own baseline (whose exact form
was not checked against the paper's text here); the optimiser is Adam (Kingma & Ba
2015) with gradient-norm clipping instead of plain gradient ascent; advantages are
normalised per batch; an entropy bonus (Williams & Peng 1991; Mnih et al. 2016) keeps
exploration up; vector observations may be scaled by running statistics
(`normalize_observations`).
`lstm_size: null` swaps the LSTM for the MLP alone, a memoryless REINFORCE that cannot
solve the T-maze.

Defaults: a 64-unit MLP encoder and a 64-unit LSTM with the backbone's forget-gate bias
1 (Gers et al. 2000), discount 0.99, Adam 1e-3, entropy 0.01 and value coefficient 0.5
(Mnih et al. 2016), gradient-norm clip 1.0. The shipped configs (configs/rpg/) hold the
values tuned here for the T-maze (shared torso, forget bias 3, small batches) and for
CartPole without velocities (observation scaling); docs/rpg.md has the measurements.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any, ClassVar

import gymnasium as gym
import torch
from pydantic import Field, PositiveInt
from torch import nn

from rlkit.agent import POLICY_SPACES, Spaces
from rlkit.config import StrictModel
from rlkit.encoders import EncoderSettings, encoder_field
from rlkit.observations import index
from rlkit.policies import ActorCritic, GreedyActing, load_network_state, network_state
from rlkit.presets import Preset
from rlkit.rollout import Carry, Rollout, discounted_returns
from rlkit.run import Run
from rlkit.workers import TorchStream, WorkerSetup

from .presets import RPG_PRESETS


class RPGConfig(StrictModel):
    """Recurrent policy gradient hyperparameters (`--set name=value`)."""

    steps_per_worker: PositiveInt = Field(
        default=512,
        description="env steps each worker collects per iteration, finishing its last episode",
    )
    gamma: float = Field(default=0.99, ge=0.0, le=1.0, description="discount factor")
    learning_rate: float = Field(default=1e-3, gt=0.0, description="Adam step size")
    entropy_coef: float = Field(
        default=0.01, ge=0.0, description="weight of the entropy bonus (0: plain REINFORCE)"
    )
    value_coef: float = Field(
        default=0.5, ge=0.0, description="weight of the baseline's squared error in the loss"
    )
    normalize_advantages: bool = Field(
        default=True, description="scale advantages to mean 0, std 1 per batch"
    )
    max_grad_norm: float | None = Field(
        default=1.0, gt=0.0, description="clip the gradient norm (None: no clipping)"
    )
    hidden: list[PositiveInt] = Field(
        default=[64], description="MLP widths of the encoder before the LSTM"
    )
    lstm_size: PositiveInt | None = Field(
        default=64, description="LSTM width (None: a memoryless MLP policy, for comparison)"
    )
    forget_bias: float = Field(
        default=1.0,
        description="initial LSTM forget-gate bias; larger keeps memories longer at the start",
    )
    normalize_observations: bool = Field(
        default=False,
        description="scale vector observations by running mean and std (sent with the weights)",
    )
    shared_torso: bool = Field(
        default=False,
        description="baseline shares the policy's encoder and LSTM (false: its own network)",
    )
    encoder: EncoderSettings = encoder_field()


def split_episodes(rollout: Rollout) -> list[Rollout]:
    """One rollout of whole episodes (N = 1) -> one rollout per episode, each from zero state."""
    starts = torch.nonzero(rollout.episode_starts[:, 0]).flatten().tolist()
    if not starts or starts[0] != 0:
        raise ValueError("the rollout does not begin at an episode start")
    bounds = [*starts, rollout.length]
    pieces = []
    for begin, end in itertools.pairwise(bounds):
        fields: dict[str, Any] = {
            name: index(getattr(rollout, name), slice(begin, end)) for name in Rollout.TIME_FIELDS
        }
        pieces.append(
            replace(
                rollout,
                **fields,
                initial_state=None,
                episode_returns=[],
                episode_lengths=[],
                episode_successes=[],
                steps=end - begin,
            )
        )
    return pieces


def episode_batch(rollouts: list[Rollout], gamma: float) -> dict[str, torch.Tensor]:
    """Workers' rollouts -> a padded batch [T_max, E], one column per episode, with returns.

    Fields: observations, actions, returns (Monte-Carlo, bootstrapped at truncations and
    at the budget cut), mask (True on real steps).
    """
    episodes = [episode for rollout in rollouts for episode in split_episodes(rollout)]
    batch, mask = Rollout.pad_time(episodes)
    returns = discounted_returns(
        batch.rewards, batch.terminated, batch.truncated, batch.bootstrap_values, gamma
    )
    return {
        "observations": batch.observations,
        "actions": batch.actions,
        "returns": returns,
        "mask": mask,
    }


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1)


def rpg_loss(
    policy: ActorCritic, batch: dict[str, torch.Tensor], cfg: RPGConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """REINFORCE loss with a learned baseline and an entropy bonus, BPTT over whole episodes.

    `batch` (see `episode_batch`): observations [T, E, *obs], actions [T, E, *act],
    returns [T, E], mask [T, E]; every column starts an episode at t = 0 from a zero
    LSTM state. The advantage G_t - V(h_t) is detached: the baseline only lowers the
    variance, its own gradient comes from the regression term alone.
    """
    mask = batch["mask"].to(torch.float32)
    returns = batch["returns"]
    no_starts = torch.zeros_like(batch["mask"])  # zero state at t = 0, no reset after
    distribution, values, _ = policy(batch["observations"], None, no_starts)
    log_probs = distribution.log_prob(batch["actions"])
    advantages = (returns - values).detach()
    if cfg.normalize_advantages and int(mask.sum()) > 1:
        mean = masked_mean(advantages, mask)
        std = masked_mean((advantages - mean) ** 2, mask).sqrt()
        advantages = (advantages - mean) / (std + 1e-8)
    policy_loss = -masked_mean(log_probs * advantages, mask)
    entropy = masked_mean(distribution.entropy(), mask)
    value_loss = masked_mean((values - returns) ** 2, mask)
    loss = policy_loss - cfg.entropy_coef * entropy + cfg.value_coef * value_loss
    metrics = {
        "train/loss": float(loss.detach()),
        "train/policy_loss": float(policy_loss.detach()),
        "train/value_loss": float(value_loss.detach()),
        "train/entropy": float(entropy.detach()),
    }
    return loss, metrics


def build_policy(
    observation_space: gym.Space[Any], action_space: gym.Space[Any], cfg: RPGConfig
) -> ActorCritic:
    """The ActorCritic with `cfg`'s widths, forget-gate bias and observation scaling."""
    return ActorCritic(
        observation_space,
        action_space,
        hidden=cfg.hidden,
        lstm_size=cfg.lstm_size,
        shared_torso=cfg.shared_torso,
        forget_bias=cfg.forget_bias,
        normalize_observations=cfg.normalize_observations,
        encoder=cfg.encoder,
    )


class RPGWorker:
    """One env and a policy copy; keeps its env and sampling RNG across calls."""

    def __init__(self, setup: WorkerSetup, *, config: dict[str, Any]) -> None:
        self.index = setup.index
        self.env = setup.start()
        self.stream = TorchStream(setup.seed)
        self.signals = setup.signals  # Atari: clipped rewards, lost lives terminal
        with TorchStream.isolated():
            space = self.env.observation_space
            self.policy = build_policy(space, self.env.action_space, RPGConfig(**config))
        self.carry = Carry.start(self.env, self.policy, seed=setup.reset_seed)

    def rollout(
        self,
        weights: dict[str, torch.Tensor],
        version: int,
        steps: list[int],
        whole_episodes: bool,
        limits: list[int] | None = None,
    ) -> Rollout | None:
        """`steps[index]` env steps with the sent weights, on to the episode's end if whole
        (but never past `limits[index]` steps: there the episode is cut).

        Each call begins where the last one stopped: on a fresh episode, from a zero
        LSTM state, after a call with `whole_episodes`. None when given no steps.
        """
        if steps[self.index] == 0:
            return None
        self.policy.load_state_dict(weights)
        if not self.carry.episode_start:  # a cut episode (the budget's end) is not resumed
            self.carry = Carry.start(self.env, self.policy, seed=None)
        with self.stream:
            rollout, self.carry = self.carry.collect(
                self.env,
                self.policy,
                steps[self.index],
                whole_episodes=whole_episodes,
                version=version,
                signals=self.signals,
                max_steps=None if limits is None else limits[self.index],
            )
        return rollout


class RPG(GreedyActing):
    """Recurrent policy gradients for Discrete or 1-D Box actions and Box observations."""

    summary: ClassVar[str] = "recurrent policy gradients: REINFORCE through an LSTM policy"
    paper: ClassVar[str] = "Wierstra et al. 2009, Recurrent policy gradients (Logic J. IGPL)"
    default_steps: ClassVar[int] = 200_000
    Config: ClassVar[type[RPGConfig]] = RPGConfig
    presets: ClassVar[tuple[Preset, ...]] = RPG_PRESETS
    step: int  # environment steps taken in training so far
    spaces: ClassVar[Spaces] = POLICY_SPACES

    def __init__(
        self,
        config: RPGConfig,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None:
        """The LSTM policy and its baseline (seeded), one Adam for both."""
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        torch.manual_seed(seed)
        self.policy = build_policy(observation_space, action_space, config)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.learning_rate)
        self.seed = seed
        self.step = 0
        self._iterations = 0

    def learn(self, total_steps: int, run: Run) -> None:
        """Collect whole episodes on the workers, then one REINFORCE step through the LSTM."""
        cfg = self.config
        kwargs = {"config": cfg.model_dump()}
        with run.start_workers(RPGWorker, self, self.seed, kwargs) as pool:
            while self.step < total_steps and not run.stop_requested:
                # the last iteration shares out the steps left and cuts its episodes there
                # (they bootstrap from the baseline), so a run ends on its exact budget
                remaining = total_steps - self.step
                whole_episodes = cfg.steps_per_worker * pool.size < remaining
                share, extra = divmod(remaining, pool.size)
                shares = [share + (index < extra) for index in range(pool.size)]
                steps = [cfg.steps_per_worker] * pool.size if whole_episodes else shares
                weights = self.policy.state_dict()
                # whole episodes are finished up to each worker's share of the budget,
                # where one that has not ended is cut: the run never passes its total
                results: list[Rollout | None] = pool.call_all(
                    "rollout", weights, self._iterations, steps, whole_episodes, shares
                )
                rollouts = [rollout for rollout in results if rollout is not None]
                for rollout in rollouts:
                    self.step += rollout.steps
                    run.logger.log_episodes(self.step, rollout)
                metrics = self._update(episode_batch(rollouts, cfg.gamma))
                self._iterations += 1
                run.end_iteration(self, metrics)

    def _update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        loss, metrics = rpg_loss(self.policy, batch, self.config)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.config.max_grad_norm is not None:  # the policy's and the baseline's apart
            limit = self.config.max_grad_norm
            norm = nn.utils.clip_grad_norm_(self.policy.policy_parameters(), limit)
            value_norm = nn.utils.clip_grad_norm_(self.policy.value_parameters(), limit)
            metrics["train/grad_norm"] = float(norm)
            metrics["train/value_grad_norm"] = float(value_norm)
        self.optimizer.step()
        if self.policy.normalizer is not None:  # after the step: what the workers acted on
            self.policy.update_normalizer(batch["observations"][batch["mask"]])
        metrics["train/episodes"] = float(batch["mask"].shape[1])
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            **network_state(self.policy, self.optimizer),
            "step": self.step,
            "iterations": self._iterations,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_network_state(self.policy, self.optimizer, state)
        self.step = int(state["step"])
        self._iterations = int(state["iterations"])
