"""DQN: Mnih et al. (2015), "Human-level control through deep reinforcement learning", Nature.

Q-learning with a deep network, made stable by two devices: experience replay (a
uniform sample of past transitions per update) and a target network (a copy of the
online network, refreshed every `target_update_period` steps, that supplies the
bootstrap target). The loss is the Huber loss of the TD error, which is the paper's
clipping of the error term to [-1, 1].

Defaults are the Nature values (Extended Data Table 1) for Atari, counted in agent
steps (one agent step = 4 emulator frames): replay 1,000,000; batch 32; one update
every 4 agent steps; target refresh every 10,000 agent steps; discount 0.99;
epsilon 1.0 -> 0.1 over the first 1,000,000 steps; learning starts after 50,000
steps; evaluation epsilon 0.05. Deliberate deviations, all configurable:
- Adam (lr 1e-4, eps 1.5e-4: Hessel et al. 2018's DQN settings) instead of RMSProp;
  `optimizer: rmsprop` gives the paper's (lr 2.5e-4, alpha 0.95, eps 0.01).
- Gradient norm clipped to 10 (as Dopamine and Stable-Baselines3 do).
- Options from later papers: Double DQN (van Hasselt et al. 2016), dueling heads
  (Wang et al. 2016) and n-step returns (Sutton 1988; Hessel et al. 2018), all off.

Every other observation starts from a second preset, RL Baselines3 Zoo's tuned DQN
CartPole-v1 values with four changed (configs/dqn/cartpole.yaml gives each value and
its source) and Double DQN; YAML and --set override either preset.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field, NonNegativeInt, PositiveInt
from torch import nn

from rlkit.agent import ANY_OBSERVATION, Spaces
from rlkit.config import StrictModel
from rlkit.encoders import EncoderSettings, build_encoder, encoder_field
from rlkit.environments import success_of
from rlkit.networks import NatureCNN, QNetwork, is_image_space, resolve_device
from rlkit.observations import (
    Tree,
    host_to_device,
    index,
    leading_shape,
    map_leaves,
    observation_arrays,
)
from rlkit.presets import Preset
from rlkit.replay import ReplayBuffer, check_memory, replay_slot_bytes
from rlkit.run_replay import make_run_replay, restore_run_replay
from rlkit.schedules import Schedule

from .presets import DQN_FLAT_OBSERVATION, DQN_FLAT_OBSERVATION_STEPS, DQN_PRESETS

if TYPE_CHECKING:
    from rlkit.run import Run


class DQNConfig(StrictModel):
    """DQN hyperparameters (`--set name=value`); defaults are the Nature Atari values."""

    buffer_size: PositiveInt = Field(
        default=1_000_000, description="replay capacity in transitions (Nature: 1M)"
    )
    batch_size: PositiveInt = Field(default=32, description="transitions per update (Nature: 32)")
    gamma: float = Field(default=0.99, ge=0.0, le=1.0, description="discount factor")
    learning_rate: float = Field(default=1e-4, gt=0.0, description="optimiser step size")
    optimizer: Literal["adam", "rmsprop"] = Field(
        default="adam", description="adam (eps 1.5e-4) or the paper's rmsprop"
    )
    adam_epsilon: float = Field(default=1.5e-4, gt=0.0, description="Adam's epsilon")
    rmsprop_momentum: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="rmsprop: gradient momentum (0: the Nature setting, and MinAtar's "
        "examples/dqn.py, which defines GRAD_MOMENTUM 0.95 but never passes it)",
    )
    learning_starts: NonNegativeInt = Field(
        default=50_000, description="agent steps of random-ish play before updates start"
    )
    train_frequency: PositiveInt = Field(
        default=4, description="agent steps between rounds of updates (Nature: 4)"
    )
    gradient_steps: PositiveInt = Field(default=1, description="updates per round")
    target_update_period: PositiveInt = Field(
        default=10_000, description="agent steps between target-network refreshes"
    )
    epsilon: Schedule = Field(
        default=Schedule(kind="linear", start=1.0, end=0.1, fraction=1.0),
        description="exploration rate; see epsilon_steps for its length",
    )
    epsilon_steps: PositiveInt | None = Field(
        default=1_000_000,
        description="agent steps to anneal epsilon over (None: use epsilon.fraction of the run)",
    )
    eval_epsilon: float = Field(
        default=0.05, ge=0.0, le=1.0, description="epsilon of the evaluation policy (Nature)"
    )
    max_grad_norm: float | None = Field(default=10.0, description="clip the gradient norm")
    double_dqn: bool = Field(default=False, description="Double DQN targets (van Hasselt 2016)")
    dueling: bool = Field(default=False, description="dueling head (Wang et al. 2016)")
    n_step: PositiveInt = Field(default=1, description="n-step returns (1: the paper's)")
    mlp_hidden: list[PositiveInt] = Field(
        default=[256, 256], description="hidden layers of the MLP torso (flat observations)"
    )
    device: str = Field(default="auto", description="torch device: auto, cpu, cuda, cuda:1")
    persist_replay: bool = Field(
        default=True,
        description="replay in memory-mapped files in <run>/replay/: a resume (even after "
        "kill -9) goes on with it; disk: buffer_size + one checkpoint interval of "
        "transitions (Atari 7.1 KB each). false: in memory, refilled on resume",
    )
    encoder: EncoderSettings = encoder_field()


# RL Baselines3 Zoo, hyperparams/dqn.yml, CartPole-v1 (tuned), with four values changed
# (configs/dqn/cartpole.yaml says which and why) and Double DQN.
FLAT_OBSERVATION_STEPS = DQN_FLAT_OBSERVATION_STEPS
FLAT_OBSERVATION_PRESET = DQN_FLAT_OBSERVATION


def td_loss(
    batch: dict[str, torch.Tensor], online: nn.Module, target: nn.Module, cfg: DQNConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Huber loss between Q(s, a) and r + discount * Q_target(s', a*); a* by Double DQN or max.

    `batch`: observations, actions (int64), rewards (n-step sums), next_observations,
    discounts (gamma**k, 0 after termination). Returns the loss and detached metrics.
    """
    q_values = online(batch["observations"])
    chosen = q_values.gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        next_target = target(batch["next_observations"])
        if cfg.double_dqn:
            best = online(batch["next_observations"]).argmax(dim=1, keepdim=True)
            next_value = next_target.gather(1, best).squeeze(1)
        else:
            next_value = next_target.max(dim=1).values
        td_target = batch["rewards"] + batch["discounts"] * next_value
    loss = nn.functional.smooth_l1_loss(chosen, td_target)
    return loss, {"train/loss": loss.detach(), "train/q_mean": chosen.detach().mean()}


class DQN:
    """Deep Q-network agent for Discrete actions and Box observations (frames or vectors)."""

    summary: ClassVar[str] = "deep Q-network: experience replay + target network (Atari, MLP)"
    paper: ClassVar[str] = "Mnih et al. 2015, Human-level control through deep RL (Nature)"
    default_steps: ClassVar[int] = 10_000_000
    Config: ClassVar[type[DQNConfig]] = DQNConfig
    presets: ClassVar[tuple[Preset, ...]] = DQN_PRESETS
    step: int  # environment steps taken in training so far
    spaces: ClassVar[Spaces] = Spaces(observation=ANY_OBSERVATION, action=(gym.spaces.Discrete,))

    def __init__(
        self,
        config: DQNConfig,
        *,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        seed: int,
    ) -> None:
        assert isinstance(action_space, gym.spaces.Discrete)
        # refuse a replay memory too big for this machine before anything starts
        stacked = is_image_space(observation_space)  # Atari: frames stored once
        check_memory(config.buffer_size, replay_slot_bytes(observation_space, stacked=stacked))
        self.config = config
        self.observation_space = observation_space
        self.num_actions = int(action_space.n)
        self.device = resolve_device(config.device)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.eval_rng = np.random.default_rng([seed, 1])  # evaluation leaves training's stream
        self.online = self._network().to(self.device)
        self.target = self._network().to(self.device)
        if self.device.type == "cpu":
            for network in (self.online, self.target):
                if isinstance(network.torso, NatureCNN):
                    network.torso.use_channels_last()
        self.target.requires_grad_(False)
        self._pairs = list(
            zip(self.target.state_dict().values(), self.online.state_dict().values(), strict=True)
        )
        self._refresh_target()
        self.optimizer = self._optimizer()
        self.replay: ReplayBuffer | None = None  # made by `learn`
        self._replay_state: dict[str, Any] | None = None  # a checkpoint's, for `learn`
        self.step = 0
        self._updates = 0
        self._seed = seed

    def _network(self) -> QNetwork:
        cfg = self.config
        torso = build_encoder(self.observation_space, cfg.mlp_hidden, settings=cfg.encoder)
        return QNetwork(torso, self.num_actions, dueling=self.config.dueling)

    def _optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "rmsprop":
            return torch.optim.RMSprop(
                self.online.parameters(),
                lr=cfg.learning_rate,
                alpha=0.95,
                eps=0.01,
                centered=True,
                momentum=cfg.rmsprop_momentum,
                foreach=True,  # one kernel per step for all parameters, as Adam's fused
            )
        # fused: one kernel for all parameters (about 10% of a Nature update on the CPU)
        return torch.optim.Adam(
            self.online.parameters(), lr=cfg.learning_rate, eps=cfg.adam_epsilon, fused=True
        )

    def epsilon(self, total_steps: int) -> float:
        cfg = self.config
        horizon = cfg.epsilon_steps
        if horizon is None:
            return cfg.epsilon.value(self.step, total_steps)
        return cfg.epsilon.value(self.step, math.ceil(horizon / cfg.epsilon.fraction))

    def _greedy(self, observations: Tree) -> np.ndarray:
        with torch.inference_mode():
            tensors = host_to_device(observations, self.device)
            return self.online(tensors).argmax(dim=1).cpu().numpy()  # type: ignore[no-any-return]

    def _explore(self, observations: Tree, epsilon: float) -> np.ndarray:
        """Epsilon-greedy actions for a batch of observations (one per env).

        The network runs only when some env acts greedily (not while epsilon is 1).
        """
        count = leading_shape(observations, 1)[0]
        explore = self.rng.random(count) < epsilon
        random_actions = self.rng.integers(self.num_actions, size=count)
        if explore.all():
            return random_actions
        return np.where(explore, random_actions, self._greedy(observations))

    def _refresh_target(self) -> None:
        """Copy the online network into the target, tensor by tensor (no state-dict walk)."""
        with torch.no_grad():
            for target, online in self._pairs:
                target.copy_(online)

    def _update(self, buffer: ReplayBuffer) -> dict[str, torch.Tensor]:
        batch = host_to_device(vars(buffer.sample(self.config.batch_size)), self.device)
        loss, metrics = td_loss(batch, self.online, self.target, self.config)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        self._updates += 1
        return metrics

    def learn(self, total_steps: int, run: Run) -> None:
        """Act epsilon-greedily in `run.vector_env`, store, replay, refresh the target.

        With `persist_replay` (the default) a resumed run goes on with the replay as of its
        checkpoint and updates go on at once; without, it refills the replay for
        `learning_starts` steps first.
        """
        cfg = self.config
        envs = run.vector_env
        num_envs = envs.num_envs
        space = envs.single_observation_space
        buffer = make_run_replay(
            run,
            space,
            num_envs,
            capacity=cfg.buffer_size,
            n_step=cfg.n_step,
            gamma=cfg.gamma,
            seed=self._seed + self.step,
            persist=cfg.persist_replay,
            step=self.step,
        )
        self.replay = buffer
        warmup = max(cfg.learning_starts, cfg.batch_size + cfg.n_step)  # steps before updates
        saved, self._replay_state = self._replay_state, None
        if restore_run_replay(buffer, saved, run, step=self.step):
            # as if never stopped; only what a lossy restore dropped below warmup is refilled
            missing = max(0, min(warmup, buffer.slots * num_envs) - len(buffer))
            updates_from = max(warmup, self.step + missing)
        else:
            updates_from = self.step + warmup if self.step else warmup
        observations, info = envs.reset(seed=run.reset_seed(self.step))
        observations = observation_arrays(observations, space)  # compact arrays per part
        buffer.start_episodes(np.arange(num_envs), observations)
        life_loss = run.signals.life_loss(num_envs)
        if life_loss is not None:
            life_loss.start(info)
        resetting = np.zeros(num_envs, dtype=bool)  # NEXT_STEP autoreset: this step resets
        returns = np.zeros(num_envs)
        lengths = np.zeros(num_envs, dtype=np.int64)
        metrics: dict[str, torch.Tensor] = {}
        while self.step < total_steps and not run.stop_requested:
            actions = self._explore(observations, self.epsilon(total_steps))
            next_observations, rewards, terminated, truncated, info = envs.step(actions)
            next_observations = observation_arrays(next_observations, space)
            stepped = np.flatnonzero(~resetting)
            learn_rewards = run.signals.rewards(rewards)
            terminated_for_learning = (
                terminated if life_loss is None else life_loss(terminated, info, resetting)
            )
            buffer.add(
                stepped,
                actions[stepped],
                learn_rewards[stepped],
                index(next_observations, stepped),
                terminated_for_learning[stepped],
                truncated[stepped],
            )
            if resetting.any():
                buffer.start_episodes(
                    np.flatnonzero(resetting), index(next_observations, resetting)
                )
            returns[stepped] += rewards[stepped]
            lengths[stepped] += 1
            previous = self.step
            self.step += len(stepped)
            for env in np.flatnonzero(~resetting & (terminated | truncated)).tolist():
                run.logger.episode(
                    self.step, float(returns[env]), int(lengths[env]), success_of(info, env)
                )
                returns[env], lengths[env] = 0.0, 0
            resetting = terminated | truncated
            observations = next_observations

            if self.step >= updates_from:
                rounds = self.step // cfg.train_frequency - previous // cfg.train_frequency
                for _ in range(rounds * cfg.gradient_steps):
                    metrics = self._update(buffer)
                if self.step // cfg.target_update_period > previous // cfg.target_update_period:
                    self._refresh_target()
            log_every = run.settings.log_every
            logged = None
            if metrics and self.step // log_every > previous // log_every:
                values = {name: float(value) for name, value in metrics.items()}
                logged = {**values, "train/epsilon": self.epsilon(total_steps)}
            run.end_iteration(self, logged)

    def act(self, observation: Any, state: Any = None) -> tuple[int, None]:
        """Evaluation policy: epsilon-greedy with `eval_epsilon` (Nature: 0.05)."""
        if self.eval_rng.random() < self.config.eval_epsilon:
            return int(self.eval_rng.integers(self.num_actions)), None
        rows = map_leaves(
            lambda part: part[None], observation_arrays(observation, self.observation_space)
        )
        return int(self._greedy(rows)[0]), None

    def initial_state(self) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimiser, counts, RNG states; and a persisted replay's ring indices
        (after flushing its files: `ReplayBuffer.state_dict`)."""
        replay = self.replay
        persisted = (
            {} if replay is None or replay.files is None else {"replay": replay.state_dict()}
        )
        return {
            **persisted,
            "online": self.online.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "updates": self._updates,
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self._updates = int(state["updates"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self._replay_state = state.get("replay")  # restored by `learn` (none: refilled)
