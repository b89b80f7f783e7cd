"""NES: natural evolution strategies, two variants behind `variant`.

`es`: Salimans et al. (2017), "Evolution Strategies as a Scalable Alternative to
Reinforcement Learning". The policy parameters theta are perturbed by sigma * epsilon
with a fixed sigma, in mirrored pairs (theta + sigma eps, theta - sigma eps; antithetic
sampling); each perturbed policy plays one episode; the returns are replaced by their
centred ranks in [-0.5, 0.5] (fitness shaping); the search gradient is
g = 1 / (n sigma) * sum_i (F(theta + sigma eps_i) - F(theta - sigma eps_i)) / 2 * eps_i over
the n pairs, and Adam ascends it with an L2 weight decay on theta. Defaults are the
paper's MuJoCo values where they carry over (sigma 0.02, Adam lr 0.01, weight decay
0.005, deterministic policies) and smaller populations for the 2-core CI.

`snes`: separable NES, Wierstra et al. (2014), "Natural Evolution Strategies", JMLR,
section 5.2. A search distribution N(mu, diag(sigma^2)) over the parameters; lambda
samples z_k = mu + sigma * s_k; fitness replaced by the rank-based utilities
u_k = max(0, log(lambda/2 + 1) - log k) / sum_j max(0, ...) - 1/lambda (k = rank, best
first); the natural gradient steps mu <- mu + eta_mu * sigma * sum_k u_k s_k and
sigma <- sigma * exp(eta_sigma / 2 * sum_k u_k (s_k^2 - 1)). Defaults are the paper's:
eta_mu = 1, eta_sigma = (3 + ln d) / (5 sqrt d) for d parameters (population 4 + 3 ln d
is the paper's default too, but the configs set it explicitly).

Population evaluation runs on the worker pool (Ray by default). As in Salimans et al.,
the Gaussian noise is one large table made from the agent's seed and placed once in
Ray's object store (`make_pool(shared=...)`); a perturbation is an offset into it.
Each generation the learner puts the current parameters (and sigma) once, and workers
receive that handle and a list of (noise offset, sign, episode seed) tasks; they send
back (return, length) per task. Nothing sent per evaluation grows with the number of
parameters; `train/bytes_per_generation` logs what moved. Tasks go out in small chunks
to whichever worker is free; a chunk lost with a dead worker is handed to the next
surviving worker (`lost_calls="return"`), so the generation completes.

Each evaluation episode is seeded from (agent seed, generation, pair), the same seed for
both members of a mirrored pair, so a generation's returns do not depend on which
worker ran what: in-process and Ray runs of one seed learn the same policy.

Policies: rlkit.policies.ActorCritic's policy part (MLP, Nature CNN for Atari frames, an
optional LSTM core) acting deterministically (argmax, or the Gaussian mean clipped to
the bounds); its value head is unused. `normalize_observations` is Salimans et al.'s
observation normalisation: workers play with the statistics frozen for the generation,
and a random `observation_fraction` of the episodes (1%, as in the paper) send back the
mean and variance of their observations, which the learner merges in task order (so Ray
and in-process runs stay equal) and sends with the next generation; the statistics are
in checkpoints and evaluation uses them frozen. Deviations: no virtual batch
normalisation (Salimans et al. used it for Atari); the noise
table is 25M floats (100 MB), not 250M; one episode per perturbation. So that a run ends
on its exact step total, a generation's episodes are cut at (steps left) / population
steps when that is shorter than the env's own limit (all members alike, so the ranking
stays fair), and the last few steps, fewer than the population, are played by the
centre without an update.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field, PositiveInt

from rlkit.agent import POLICY_SPACES, Spaces
from rlkit.config import StrictModel
from rlkit.encoders import EncoderSettings, encoder_field
from rlkit.errors import UserError
from rlkit.evaluation import Episode, play_episode
from rlkit.networks import Activation
from rlkit.numpy_acting import compile_greedy
from rlkit.policies import (
    ActorCritic,
    GreedyActing,
    GreedyPolicy,
    flat_parameters,
    load_statistics,
    normalizer_statistics,
    set_flat_parameters,
)
from rlkit.pool import WorkerPool, map_chunks
from rlkit.presets import Preset
from rlkit.run import Run
from rlkit.seeding import derive_seed
from rlkit.workers import TorchStream, WorkerSetup

from .presets import NES_PRESETS


class NESConfig(StrictModel):
    """NES hyperparameters (`--set name=value`)."""

    variant: Literal["es", "snes"] = Field(
        default="es",
        description="es: Salimans et al. 2017 (fixed sigma, mirrored, Adam); snes: separable "
        "NES, Wierstra et al. 2014 (adapted per-parameter sigma)",
    )
    population: PositiveInt = Field(
        default=48,
        description="episodes per generation; es: mirrored pairs, so it must be even. Larger: "
        "a less noisy gradient per generation, more steps per generation",
    )
    sigma: float = Field(
        default=0.02, gt=0.0, description="es: perturbation scale; snes: initial sigma"
    )
    learning_rate: float = Field(default=0.01, gt=0.0, description="es: Adam step size")
    weight_decay: float = Field(
        default=0.005, ge=0.0, description="es: L2 coefficient pulling theta towards 0"
    )
    eta_mu: float = Field(default=1.0, gt=0.0, description="snes: learning rate of the mean")
    eta_sigma: float | None = Field(
        default=None,
        gt=0.0,
        description="snes: learning rate of sigma (default (3 + ln d) / (5 sqrt d), d params)",
    )
    common_start: bool = Field(
        default=False,
        description="every member of a generation starts from the same seeded reset "
        "(common random numbers: ranks compare policies, not start states)",
    )
    select_every: PositiveInt | None = Field(
        default=None,
        description="every this many generations the centre and the kept policy play the "
        "same select_episodes fresh starts and the better is kept as the run's policy "
        "(acting, evaluated, saved) while the search goes on from the centre; none: the "
        "policy is the current centre",
    )
    select_episodes: PositiveInt = Field(
        default=5, description="episodes each of the centre and the kept policy plays per selection"
    )
    noise_table_size: PositiveInt = Field(
        default=25_000_000,
        description="Gaussian floats in the shared noise table (4 bytes each, once per node)",
    )
    hidden: list[PositiveInt] = Field(default=[64, 64], description="MLP widths of the policy")
    activation: Activation = Field(
        default="relu", description="hidden units: relu, or tanh (Salimans et al. 2017's)"
    )
    lstm_size: PositiveInt | None = Field(
        default=None, description="LSTM core width; none for a memoryless policy"
    )
    normalize_observations: bool = Field(
        default=False,
        description="scale vector observations by running mean and std, clipped to +-10; the "
        "statistics come from observation_fraction of the episodes (Salimans et al. 2017)",
    )
    observation_fraction: float = Field(
        default=0.01,
        gt=0.0,
        le=1.0,
        description="with normalize_observations: the share of a generation's episodes whose "
        "observations update the statistics (Salimans et al. 2017: 1%)",
    )
    encoder: EncoderSettings = encoder_field()


def noise_table(seed: int, size: int) -> np.ndarray:
    """`size` standard-normal float32 values, the same for the same seed (rebuilt on resume)."""
    return np.random.default_rng(seed).standard_normal(size, dtype=np.float32)


def centred_ranks(returns: np.ndarray) -> np.ndarray:
    """Salimans et al.'s fitness shaping: each return's rank scaled to [-0.5, 0.5]."""
    ranks = np.empty(returns.size, dtype=np.float64)
    ranks[returns.reshape(-1).argsort(kind="stable")] = np.arange(returns.size)
    if returns.size > 1:
        ranks /= returns.size - 1
    return (ranks - 0.5).reshape(returns.shape)


def snes_utilities(returns: np.ndarray) -> np.ndarray:
    """Wierstra et al.'s rank-based utilities (best return first gets the most), sum 0."""
    count = returns.size
    raw = np.maximum(0.0, math.log(count / 2 + 1) - np.log(np.arange(1, count + 1)))
    by_rank = raw / raw.sum() - 1.0 / count
    utilities = np.empty(count, dtype=np.float64)
    utilities[np.argsort(-returns, kind="stable")] = by_rank
    return utilities


def es_gradient(returns: np.ndarray, noise: np.ndarray, sigma: float) -> np.ndarray:
    """Search gradient from mirrored pairs: `returns` [n, 2] (+eps, -eps), `noise` [n, d]."""
    shaped = centred_ranks(returns)
    gradient: np.ndarray = ((shaped[:, 0] - shaped[:, 1]) / 2) @ noise / (len(noise) * sigma)
    return gradient


def snes_update(
    mu: np.ndarray,
    sigma: np.ndarray,
    returns: np.ndarray,
    samples: np.ndarray,
    *,
    eta_mu: float,
    eta_sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One SNES step from `samples` s_k [lambda, d] (z_k = mu + sigma s_k) and their returns."""
    utilities = snes_utilities(returns)
    mu_gradient = utilities @ samples
    sigma_gradient = utilities @ (samples**2 - 1.0)
    return mu + eta_mu * sigma * mu_gradient, sigma * np.exp(eta_sigma / 2 * sigma_gradient)


def build_policy(
    observation_space: gym.Space[Any], action_space: gym.Space[Any], config: NESConfig
) -> ActorCritic:
    return ActorCritic(
        observation_space,
        action_space,
        hidden=config.hidden,
        activation=config.activation,
        lstm_size=config.lstm_size,
        encoder=config.encoder,
        normalize_observations=config.normalize_observations,
    )


class Task(NamedTuple):
    """One population member's episode: centre + sign * scale * noise[offset:]."""

    offset: int  # into the shared noise table
    sign: float  # +1 or -1 (a mirrored pair), 0 for the centre itself
    episode_seed: int  # the episode's reset seed, the same for both members of a pair
    record: bool = False  # send back the moments of its observations (normalisation)


class NESWorker:
    """An env and a policy copy; plays perturbed policies read from the shared noise table."""

    def __init__(self, setup: WorkerSetup, *, config: NESConfig, noise: np.ndarray) -> None:
        self.env = setup.start()
        with TorchStream.isolated():
            self.policy = build_policy(self.env.observation_space, self.env.action_space, config)
        self.params = self.policy.policy_parameters()
        # NumPy acting where the policy allows it: a few times faster per step than torch
        self.fast = compile_greedy(self.policy, self.env.action_space)
        self.actor = self.fast or GreedyPolicy(self.policy, self.env.action_space)
        self.noise = noise  # read-only; in Ray's object store, shared by a node's workers

    def evaluate(
        self,
        search: tuple[Any, ...],
        tasks: list[Task],
        version: int,
        max_steps: int,
    ) -> list[Episode]:
        """One episode per task, each cut after `max_steps` steps; `search` is the
        (centre, scale) of generation `version`, and with normalisation its observation
        statistics (mean, variance, count), which stay frozen while it plays."""
        centre, scale, *statistics = search
        if statistics:
            load_statistics(self.policy, statistics[0])
        episodes = []
        for task in tasks:
            epsilon = self.noise[task.offset : task.offset + centre.size]
            parameters = centre + task.sign * scale * epsilon
            set_flat_parameters(self.params, torch.from_numpy(parameters))
            if self.fast is not None:
                self.fast.refresh()
            episodes.append(
                play_episode(
                    self.actor,
                    self.env,
                    seed=task.episode_seed,
                    max_steps=max_steps,
                    observation_moments=task.record,
                )
            )
        return episodes


class NES(GreedyActing):
    """Natural evolution strategies (ES or SNES) over a policy's parameters, on a pool."""

    summary: ClassVar[str] = "natural evolution strategies: ES (shared noise table) or SNES"
    paper: ClassVar[str] = (
        "Wierstra et al. 2014, Natural Evolution Strategies (JMLR); Salimans et al. 2017, "
        "Evolution Strategies as a Scalable Alternative to RL"
    )
    default_steps: ClassVar[int] = 1_000_000
    Config: ClassVar[type[NESConfig]] = NESConfig
    presets: ClassVar[tuple[Preset, ...]] = NES_PRESETS
    step: int  # environment steps taken in training so far
    learns_from_signals: ClassVar[bool] = False  # ranks whole-episode game scores
    spaces: ClassVar[Spaces] = POLICY_SPACES

    def __init__(
        self,
        config: NESConfig,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None:
        """The policy (seeded), its parameters as the search centre, the noise seed."""
        if config.variant == "es" and config.population % 2:
            raise UserError(
                f"nes: population {config.population} must be even for variant es "
                "(mirrored pairs); accepted: an even number, or variant=snes"
            )
        self.config = config
        self.action_space = action_space
        torch.manual_seed(seed)
        self.policy = build_policy(observation_space, action_space, config)
        self.params = self.policy.policy_parameters()
        self.centre = flat_parameters(self.params).numpy().astype(np.float32)
        size = self.centre.size
        if config.noise_table_size < size:
            raise UserError(
                f"nes: noise_table_size {config.noise_table_size} is smaller than the policy's "
                f"{size} parameters; accepted: at least {size}"
            )
        self.sigma = np.full(size, config.sigma, dtype=np.float32)  # snes adapts it
        self.eta_sigma = config.eta_sigma or (3 + math.log(size)) / (5 * math.sqrt(size))
        self.adam = torch.optim.Adam(
            [torch.nn.Parameter(torch.from_numpy(self.centre.copy()))], lr=config.learning_rate
        )
        self.noise_seed = derive_seed(seed, "noise")
        self.rng = np.random.default_rng(seed)
        # which episodes feed the observation statistics: a stream of its own, so runs
        # without normalisation draw exactly what they drew before
        self.observation_rng = np.random.default_rng(derive_seed(seed, "observation-statistics"))
        self.seed = seed
        self.step = 0
        self._generation = 0
        self._noise: np.ndarray | None = None
        self.best_centre: np.ndarray | None = None  # with select_every: the policy's

    @property
    def noise(self) -> np.ndarray:
        if self._noise is None:
            self._noise = noise_table(self.noise_seed, self.config.noise_table_size)
        return self._noise

    def learn(self, total_steps: int, run: Run) -> None:
        """Per generation: sample perturbations, evaluate them on the pool, update."""
        run.note(f"{self.config.variant}, {self.centre.size} parameters")
        with run.start_workers(
            NESWorker,
            self,
            self.seed,
            {"config": self.config},
            shared={"noise": self.noise},
            lost_calls="return",
        ) as pool:
            while self.step < total_steps and not run.stop_requested:
                before = self._generation
                metrics = self._generation_step(pool, run, total_steps - self.step)
                every = self.config.select_every
                ran = self._generation != before  # not the centre playing the last steps
                if every is not None and ran and self._generation % every == 0:
                    metrics.update(self._select(pool, total_steps - self.step))
                run.end_iteration(self, metrics)

    def _tasks(self) -> tuple[np.ndarray, list[Task]]:
        """This generation's noise offsets and its (offset, sign, episode seed) tasks."""
        cfg = self.config
        mirrored = cfg.variant == "es"
        count = cfg.population // 2 if mirrored else cfg.population
        offsets = self.rng.integers(0, cfg.noise_table_size - self.centre.size + 1, size=count)
        signs = (1.0, -1.0) if mirrored else (1.0,)
        tasks: list[Task] = []
        for pair, offset in enumerate(offsets):
            member = 0 if cfg.common_start else pair
            episode_seed = derive_seed(
                self.seed, "episode", index=self._generation * cfg.population + member
            )
            tasks.extend(Task(int(offset), sign, episode_seed) for sign in signs)
        if self.policy.normalizer is not None:
            draws = self.observation_rng.random(len(tasks)) < cfg.observation_fraction
            tasks = [
                task._replace(record=bool(draw)) for task, draw in zip(tasks, draws, strict=True)
            ]
        return offsets, tasks

    def _search(self, parameters: np.ndarray, scale: np.ndarray | float) -> tuple[Any, ...]:
        """What workers play a generation with: parameters, scale, and the frozen
        observation statistics when normalising."""
        statistics = normalizer_statistics(self.policy)
        return (parameters, scale) if statistics is None else (parameters, scale, statistics)

    def _merge_observations(self, episodes: list[Episode]) -> None:
        """Merge the recorded episodes' observation moments, in task order."""
        normalizer = self.policy.normalizer
        if normalizer is None:
            return
        for episode in episodes:
            if episode.observations is not None:
                count, mean, var = episode.observations
                normalizer.merge(float(count), mean, var)

    def _generation_step(self, pool: WorkerPool, run: Run, remaining: int) -> dict[str, float]:
        """One generation, its episodes cut so that it takes at most `remaining` steps.

        With fewer steps left than the population has members, the centre plays them
        instead (no update), so a run ends on its exact step total.
        """
        cfg = self.config
        offsets, tasks = self._tasks()
        scale: np.ndarray | float = self.sigma if cfg.variant == "snes" else cfg.sigma
        max_steps = remaining // len(tasks)
        if max_steps == 0:
            tasks, max_steps = [Task(0, 0.0, tasks[0].episode_seed)], remaining
        chunked = map_chunks(
            pool,
            "evaluate",
            tasks,
            shared=self._search(self.centre, scale),
            args=(self._generation, max_steps),
        )
        episodes: list[Episode] = chunked.results
        self._merge_observations(episodes)
        returns = np.array([episode.total for episode in episodes], dtype=np.float64)
        lengths = [episode.length for episode in episodes]
        self.step += sum(lengths)
        run.logger.episodes_finished(self.step, returns.tolist(), lengths, [None] * len(tasks))
        traffic = {
            "train/bytes_per_generation": float(chunked.bytes_sent + chunked.bytes_received),
            "train/bytes_to_workers": float(chunked.bytes_sent),
            "train/lost_chunks": float(chunked.lost_chunks),
            "workers/restarts": float(pool.restarts),
        }
        if len(tasks) == 1:
            return {"train/centre_return": float(returns[0]), **traffic}
        size = self.centre.size
        noise = np.stack([self.noise[offset : offset + size] for offset in offsets])
        if cfg.variant == "es":
            gradient = es_gradient(returns.reshape(-1, 2), noise, cfg.sigma)
            self._adam_ascend(gradient - cfg.weight_decay * self.centre)
        else:
            centre, sigma = snes_update(
                self.centre,
                self.sigma,
                returns,
                noise,
                eta_mu=cfg.eta_mu,
                eta_sigma=self.eta_sigma,
            )
            self.centre, self.sigma = centre.astype(np.float32), sigma.astype(np.float32)
        set_flat_parameters(self.params, torch.from_numpy(self._acting()))
        self._generation += 1
        return {
            "train/population_return": float(returns.mean()),
            "train/population_return_max": float(returns.max()),
            "train/episode_step_limit": float(max_steps),
            "train/sigma_mean": float(np.mean(scale)),
            "train/parameter_norm": float(np.linalg.norm(self.centre)),
            **traffic,
        }

    def _select(self, pool: WorkerPool, remaining: int) -> dict[str, float]:
        """Play the centre and the kept policy on the same fresh starts; keep the better.

        Both play this selection's starts (seeds of their own, new each time, not the
        training episodes' or the evaluation's): a paired comparison, so the kept policy
        is one that beat every later challenger on starts it had not been chosen on.
        """
        count = self.config.select_episodes
        players = [self.centre] if self.best_centre is None else [self.centre, self.best_centre]
        max_steps = remaining // (count * len(players))
        if max_steps == 0:
            return {}
        first = self._generation * count
        tasks = [
            Task(0, 0.0, derive_seed(self.seed, "selection", index=first + j)) for j in range(count)
        ]
        scores = []
        cut = False  # an episode stopped by the step budget, not by the env
        for parameters in players:
            chunked = map_chunks(
                pool,
                "evaluate",
                tasks,
                shared=self._search(parameters, 0.0),
                args=(self._generation, max_steps),
            )
            episodes: list[Episode] = chunked.results
            self.step += sum(episode.length for episode in episodes)
            scores.append(float(np.mean([episode.total for episode in episodes])))
            cut = cut or any(episode.length >= max_steps for episode in episodes)
        # cut episodes do not compare policies: the kept one stays
        centre_wins = len(scores) == 1 or (not cut and scores[0] >= scores[1])
        if centre_wins:
            self.best_centre = self.centre.copy()
        set_flat_parameters(self.params, torch.from_numpy(self._acting()))
        kept = scores[0] if centre_wins else scores[1]
        return {"train/selection_return": scores[0], "train/selected_return": kept}

    def _acting(self) -> np.ndarray:
        """The parameters the policy acts with: the kept policy when selection is on."""
        if self.config.select_every is None or self.best_centre is None:
            return self.centre
        return self.best_centre

    def _adam_ascend(self, gradient: np.ndarray) -> None:
        """One Adam step along `gradient` (Adam minimises, so it gets the negative)."""
        (param,) = self.adam.param_groups[0]["params"]
        param.grad = torch.from_numpy(-gradient.astype(np.float32))
        self.adam.step()
        self.centre = param.detach().numpy().copy()

    def state_dict(self) -> dict[str, Any]:
        return {
            "centre": torch.from_numpy(self.centre.copy()),
            "sigma": torch.from_numpy(self.sigma.copy()),
            "adam": self.adam.state_dict(),
            "step": self.step,
            "generation": self._generation,
            "rng": self.rng.bit_generator.state,
            **self._selection_state(),
            **self._normalizer_state(),
        }

    def _normalizer_state(self) -> dict[str, Any]:
        statistics = normalizer_statistics(self.policy)
        if statistics is None:
            return {}
        mean, var, count = statistics
        return {
            "observation_mean": torch.from_numpy(mean),
            "observation_var": torch.from_numpy(var),
            "observation_count": count,
            "observation_rng": self.observation_rng.bit_generator.state,
        }

    def _selection_state(self) -> dict[str, Any]:
        if self.best_centre is None:
            return {}
        return {"best_centre": torch.from_numpy(self.best_centre.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.centre = state["centre"].numpy().astype(np.float32)
        self.sigma = state["sigma"].numpy().astype(np.float32)
        self.adam.load_state_dict(state["adam"])
        (param,) = self.adam.param_groups[0]["params"]
        with torch.no_grad():
            param.copy_(torch.from_numpy(self.centre))
        best = state.get("best_centre")
        self.best_centre = None if best is None else best.numpy().astype(np.float32)
        set_flat_parameters(self.params, torch.from_numpy(self._acting()))
        self.step = int(state["step"])
        self._generation = int(state["generation"])
        self.rng.bit_generator.state = state["rng"]
        if self.policy.normalizer is not None and "observation_mean" in state:
            load_statistics(
                self.policy,
                (
                    state["observation_mean"].numpy(),
                    state["observation_var"].numpy(),
                    float(state["observation_count"]),
                ),
            )
            self.observation_rng.bit_generator.state = state["observation_rng"]
