"""On-policy rollouts: collecting segments from envs, returns and GAE advantages.

    carry = Carry.start(env, policy, seed=seed)
    rollout, carry = carry.collect(env, policy, steps=128, version=weights_version)
    rollout, carries = collect_envs(envs, policy, carries, steps=10)  # N envs, batched
    rollout, carries = collect_envs(envs, policy, carries, 10, signals=run.signals)  # Atari
    batch = Rollout.concatenate([rollout_a, rollout_b])          # along envs (same T)
    advantages = gae(batch.rewards, batch.values, batch.bootstrap_values,
                     batch.terminated, batch.truncated, gamma=0.99, lam=0.95)
    value_targets = advantages + batch.values

Storage is torch: every field of a `Rollout` is a CPU tensor shaped [T, N, ...] (time
first, then env), float32 for rewards, values and log-probs, bool for the flags, int64
for Discrete actions, the env's own dtype for observations (uint8 frames stay uint8;
float64 vectors become float32). `Rollout.to(device)` moves the tensors.

Episode ends and bootstrapping. `terminated[t]`: the episode reached a terminal state
at step t; nothing follows, so the return does not bootstrap. `truncated[t]`: the
episode was cut (a time limit), so the return bootstraps from
`bootstrap_values[t]` = V(final observation) (Pardo et al. 2018, "Time limits in
reinforcement learning"). At the segment's last step t = T - 1 of an unfinished
episode the return bootstraps from `bootstrap_values[T - 1]` = V(s_T). Elsewhere
`bootstrap_values` is 0 and ignored. Returns and advantages never flow across an
episode end. `episode_starts[t]`: step t is the first of an episode (the LSTM resets
its state before it).

Learning signals (`rlkit.signals`): given `signals`, `rewards` holds the rewards to learn
from (Atari: clipped) and `terminated` the learning terminals (Atari with episodic
life: also every step that lost a life, while the game goes on and no episode starts);
`episode_returns` stay game scores, and envs reset only when their game ends.

Batching episodes of different lengths: `Rollout.pad_time(rollouts)` pads every
segment to the longest T and joins them along N, returning a mask of real steps
(recurrent policy gradients over whole episodes, Wierstra et al. 2009).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlkit.observations import (
    Tree,
    concatenate,
    map_leaves,
    stack,
    stack_observations,
    to_device,
)
from rlkit.policies import ActorCritic, RecurrentState, concatenate_states
from rlkit.signals import LearningSignals


def discounted_returns(
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    bootstrap_values: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """Monte-Carlo returns [T, N]: G_t = r_t + gamma * G_{t+1}, cut at every episode end.

    At a terminated step G_t = r_t; at a truncated step or the segment's last step
    G_t = r_t + gamma * bootstrap_values[t] (see the module docstring).
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    terminated = torch.as_tensor(terminated, dtype=torch.bool)
    truncated = torch.as_tensor(truncated, dtype=torch.bool)
    bootstrap_values = torch.as_tensor(bootstrap_values, dtype=torch.float32)
    steps = rewards.shape[0]
    returns = torch.empty_like(rewards)
    following = torch.zeros_like(rewards[0])  # G_{t+1} within the same episode
    for t in reversed(range(steps)):
        cut = truncated[t] if t < steps - 1 else torch.ones_like(truncated[t])
        following = torch.where(cut, bootstrap_values[t], following)
        following = torch.where(terminated[t], torch.zeros_like(following), following)
        returns[t] = rewards[t] + gamma * following
        following = returns[t]
    return returns


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    bootstrap_values: torch.Tensor,
    terminated: torch.Tensor,
    truncated: torch.Tensor,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """Generalized advantage estimates [T, N] (Schulman et al. 2016, eq. 16).

    delta_t = r_t + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t), with V(s_{t+1}) =
    bootstrap_values[t] at a truncation or t = T - 1, else values[t + 1];
    A_t = delta_t + gamma * lam * A_{t+1}, cut at every episode end. lam = 1 gives the
    Monte-Carlo returns minus values, lam = 0 the one-step TD errors. Value targets
    (the TD(lam) returns) are `advantages + values`.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    values = torch.as_tensor(values, dtype=torch.float32)
    bootstrap_values = torch.as_tensor(bootstrap_values, dtype=torch.float32)
    terminated = torch.as_tensor(terminated, dtype=torch.bool)
    truncated = torch.as_tensor(truncated, dtype=torch.bool)
    steps = rewards.shape[0]
    advantages = torch.empty_like(rewards)
    following = torch.zeros_like(rewards[0])  # A_{t+1} within the same episode
    for t in reversed(range(steps)):
        if t == steps - 1:
            next_value = bootstrap_values[t]
            ended = torch.ones_like(truncated[t])
        else:
            next_value = torch.where(truncated[t], bootstrap_values[t], values[t + 1])
            ended = terminated[t] | truncated[t]
        alive = (~terminated[t]).to(rewards.dtype)
        delta = rewards[t] + gamma * next_value * alive - values[t]
        following = torch.where(ended, torch.zeros_like(following), following)
        advantages[t] = delta + gamma * lam * following
        following = advantages[t]
    return advantages


def _pad_time(tensor: torch.Tensor, length: int, fill: float | bool) -> torch.Tensor:
    missing = length - tensor.shape[0]
    if missing == 0:
        return tensor
    padding = torch.full((missing, *tensor.shape[1:]), fill, dtype=tensor.dtype)
    return torch.cat([tensor, padding.to(tensor.device)], dim=0)


def _pad_repeating(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """Pad along time with copies of the last step: padded observations stay valid values of
    their space (a Discrete part with `start` 1 has no 0), whatever the networks make of them."""
    missing = length - tensor.shape[0]
    if missing == 0:
        return tensor
    return torch.cat([tensor, tensor[-1:].expand(missing, *tensor.shape[1:])], dim=0)


@dataclass
class Rollout:
    """One worker's segment of experience, shaped [T, N, ...] (see the module docstring)."""

    observations: Tree  # [T, N, *obs] (per part of a Dict/Tuple), the one acted on at step t
    actions: torch.Tensor  # [T, N, *act], the sampled (unclipped) action
    log_probs: torch.Tensor  # [T, N], log pi(action | history) when acting
    values: torch.Tensor  # [T, N], V(s_t) when acting
    rewards: torch.Tensor  # [T, N]
    terminated: torch.Tensor  # [T, N] bool
    truncated: torch.Tensor  # [T, N] bool
    bootstrap_values: torch.Tensor  # [T, N]: V(final obs) at truncations, V(s_T) at T - 1
    episode_starts: torch.Tensor  # [T, N] bool: step t is an episode's first
    initial_state: RecurrentState | None  # LSTM state before step 0, rows [N, H]
    episode_returns: list[float] = field(default_factory=list)  # episodes ended in it
    episode_lengths: list[int] = field(default_factory=list)
    episode_successes: list[bool | None] = field(default_factory=list)  # info["is_success"]
    steps: int = 0  # environment steps in the segment (T * N)
    version: int = 0  # version of the weights that acted

    TIME_FIELDS: ClassVar[tuple[str, ...]] = (
        "observations",
        "actions",
        "log_probs",
        "values",
        "rewards",
        "terminated",
        "truncated",
        "bootstrap_values",
        "episode_starts",
    )

    @property
    def length(self) -> int:
        """T, the number of time steps."""
        return int(self.rewards.shape[0])

    def to(self, device: torch.device | str) -> Rollout:
        """A copy with every tensor (and the initial state) on `device`."""
        moved: dict[str, Any] = {
            name: to_device(getattr(self, name), device) for name in self.TIME_FIELDS
        }
        state = self.initial_state
        moved["initial_state"] = None if state is None else tuple(p.to(device) for p in state)
        return replace(self, **moved)

    @staticmethod
    def concatenate(rollouts: Sequence[Rollout]) -> Rollout:
        """Join segments of equal length T along the env axis N.

        Bookkeeping lists are joined, `steps` summed, and `version` is the oldest one
        (the most off-policy data in the batch).
        """
        lengths = {rollout.length for rollout in rollouts}
        if len(lengths) != 1:
            raise ValueError(f"segments differ in length {sorted(lengths)}; use pad_time")
        joined: dict[str, Any] = {
            name: concatenate([getattr(rollout, name) for rollout in rollouts], dim=1)
            for name in Rollout.TIME_FIELDS
        }
        return Rollout(
            **joined,
            initial_state=concatenate_states([rollout.initial_state for rollout in rollouts]),
            episode_returns=[x for rollout in rollouts for x in rollout.episode_returns],
            episode_lengths=[x for rollout in rollouts for x in rollout.episode_lengths],
            episode_successes=[x for rollout in rollouts for x in rollout.episode_successes],
            steps=sum(rollout.steps for rollout in rollouts),
            version=min(rollout.version for rollout in rollouts),
        )

    @staticmethod
    def pad_time(rollouts: Sequence[Rollout]) -> tuple[Rollout, torch.Tensor]:
        """Pad segments of different T to the longest and join them along N.

        Returns the batch and a mask [T_max, N], True on real steps. A padded segment's
        last real step, if it did not end its episode, is marked truncated (both
        bootstrap from `bootstrap_values[t]`, so returns and GAE are unchanged). Padded
        steps repeat the last real observation and have zero actions, rewards, values and
        bootstrap values and
        are terminated, so their returns and advantages are 0; the first padded step is
        marked as an episode start. Use the mask to leave them out of losses.
        """
        longest = max(rollout.length for rollout in rollouts)
        padded = []
        masks = []
        for rollout in rollouts:
            length = rollout.length
            mask = torch.zeros(longest, rollout.rewards.shape[1], dtype=torch.bool)
            mask[:length] = True
            masks.append(mask)
            if length == longest:
                padded.append(rollout)
                continue
            truncated = rollout.truncated.clone()
            truncated[-1] |= ~rollout.terminated[-1]
            starts = _pad_time(rollout.episode_starts, longest, False)
            starts[length] = True
            tensors: dict[str, Any] = {
                name: _pad_time(getattr(rollout, name), longest, 0)
                for name in ("actions", "log_probs", "values", "rewards")
            }
            tensors["observations"] = map_leaves(
                lambda leaf: _pad_repeating(leaf, longest), rollout.observations
            )
            padded.append(
                replace(
                    rollout,
                    **tensors,
                    bootstrap_values=_pad_time(rollout.bootstrap_values, longest, 0),
                    terminated=_pad_time(rollout.terminated, longest, True),
                    truncated=_pad_time(truncated, longest, False),
                    episode_starts=starts,
                )
            )
        return Rollout.concatenate(padded), torch.cat(masks, dim=1)


@dataclass
class Carry:
    """Where one env's collection left off: what the next `collect` call continues from."""

    observation: Any  # the env's current observation (to act on next)
    state: RecurrentState | None  # LSTM state before acting on `observation`
    episode_start: bool  # `observation` is an episode's first
    episode_return: float = 0.0  # reward summed so far in the current episode
    episode_length: int = 0  # steps taken so far in the current episode
    lives: int = 0  # Atari lives left (info["lives"]; 0 where the env reports none)

    @classmethod
    def start(cls, env: gym.Env[Any, Any], policy: ActorCritic, *, seed: int | None) -> Carry:
        """Reset `env` (with `seed`) and start from the policy's initial state."""
        observation, info = env.reset(seed=seed)
        return cls(observation, policy.initial_state(1), True, lives=int(info.get("lives", 0)))

    def collect(
        self,
        env: gym.Env[Any, Any],
        policy: ActorCritic,
        steps: int,
        *,
        whole_episodes: bool = False,
        version: int = 0,
        signals: LearningSignals | None = None,
        max_steps: int | None = None,
    ) -> tuple[Rollout, Carry]:
        """`collect_envs` on this one env from this carry (N = 1)."""
        rollout, carries = collect_envs(
            [env],
            policy,
            [self],
            steps,
            whole_episodes=whole_episodes,
            version=version,
            signals=signals,
            max_steps=max_steps,
        )
        return rollout, carries[0]


def _env_actions(actions: torch.Tensor, space: gym.Space[Any]) -> list[Any]:
    """A batch of sampled actions [N, ...] as N actions for the envs (Box: clipped;
    Discrete and MultiDiscrete: `start` added; MultiDiscrete and MultiBinary: the flat
    samples reshaped to the space's shape, in its dtype)."""
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return [int(action) + start for action in actions.tolist()]
    array = actions.cpu().numpy()
    if isinstance(space, gym.spaces.Box):
        array = np.clip(array, space.low, space.high).astype(space.dtype)
    elif isinstance(space, gym.spaces.MultiDiscrete):
        shaped = array.reshape(len(array), *space.nvec.shape)
        array = (shaped + space.start).astype(space.dtype)
    elif isinstance(space, gym.spaces.MultiBinary):
        array = array.reshape(len(array), *space.shape).astype(space.dtype)
    return list(array)


def collect_envs(
    envs: Sequence[gym.Env[Any, Any]],
    policy: ActorCritic,
    carries: Sequence[Carry],
    steps: int,
    *,
    whole_episodes: bool = False,
    version: int = 0,
    acting_only: bool = False,
    signals: LearningSignals | None = None,
    max_steps: int | None = None,
) -> tuple[Rollout, list[Carry]]:
    """Step N envs together `steps` times, one batched `policy.step` per time step.

    `carries[i]` says where env i is (the previous call's, or `Carry.start`). Box
    actions are clipped to the space's bounds for the env; the rollout keeps the
    unclipped sample, whose log-prob it stores. When an episode ends its env is reset
    (without a seed: its own RNG stream goes on) and the episode is recorded.
    `whole_episodes=True` (one env only) keeps stepping past `steps` until the current
    episode ends, or until `max_steps` steps, where it cuts the episode (bootstrapped as
    at `steps`): an episode that never ends cannot hold a collection forever. Runs
    under `torch.no_grad()`; the rollout is on the CPU, shaped [T, N], with `version`
    stored. Returns it and the carries for the next call.

    `acting_only=True` acts with `policy.act`, skipping the value function, and leaves
    the rollout's `values` and `log_probs` NaN, for learners that recompute both (A3C);
    bootstrap values are computed all the same. `signals` form the rewards and terminals
    stored for learning (see the module docstring).
    """
    if steps <= 0:
        raise ValueError(f"steps must be positive, got {steps}")
    if len(envs) != len(carries) or not envs:
        raise ValueError(f"need one carry per env, got {len(carries)} for {len(envs)} envs")
    if whole_episodes and len(envs) != 1:
        raise ValueError(f"whole_episodes collects from one env, got {len(envs)}")
    device = policy.value_head.weight.device
    space = envs[0].action_space
    observation_space = envs[0].observation_space
    state = concatenate_states([carry.state for carry in carries])
    initial_state = None if state is None else tuple(part.detach().cpu() for part in state)
    current = [carry.observation for carry in carries]
    starts = [carry.episode_start for carry in carries]
    returns = [carry.episode_return for carry in carries]
    lengths = [carry.episode_length for carry in carries]
    signals = signals or LearningSignals()
    life_loss = signals.life_loss(len(envs))
    if life_loss is not None:
        life_loss.start({"lives": [carry.lives for carry in carries]})
    no_resets = np.zeros(len(envs), dtype=bool)
    columns: dict[str, list[Any]] = {name: [] for name in Rollout.TIME_FIELDS}
    episode_returns: list[float] = []
    episode_lengths: list[int] = []
    episode_successes: list[bool | None] = []
    taken = 0
    with torch.no_grad():
        while True:
            observations = stack_observations(current, observation_space)
            starting = torch.tensor(starts, device=device)
            if acting_only:
                distribution, state = policy.act(to_device(observations, device), state, starting)
                values = torch.full((len(envs),), math.nan)
            else:
                on_device = to_device(observations, device)
                distribution, values, state = policy.step(on_device, state, starting)
            actions = distribution.sample()
            log_probs = values if acting_only else distribution.log_prob(actions)
            columns["observations"].append(observations)
            columns["actions"].append(actions.cpu())
            columns["log_probs"].append(log_probs.cpu())
            columns["values"].append(values.cpu())
            columns["episode_starts"].append(list(starts))
            stepped = [
                env.step(action)
                for env, action in zip(envs, _env_actions(actions, space), strict=True)
            ]
            taken += 1
            terminated = [bool(outcome[2]) for outcome in stepped]
            truncated = [bool(outcome[3]) for outcome in stepped]
            last = (taken >= steps and (not whole_episodes or terminated[0] or truncated[0])) or (
                max_steps is not None and taken >= max_steps
            )
            rewards = [float(outcome[1]) for outcome in stepped]
            columns["rewards"].append(signals.rewards(np.array(rewards)).tolist())
            if life_loss is None:
                columns["terminated"].append(terminated)
            else:  # a lost life is terminal for learning; the game goes on
                lives = {"lives": [outcome[4]["lives"] for outcome in stepped]}
                learning_ends = life_loss(np.array(terminated), lives, no_resets)
                columns["terminated"].append(learning_ends.tolist())
            columns["truncated"].append(truncated)
            bootstrap = torch.zeros(len(envs))
            cut = [i for i in range(len(envs)) if not terminated[i] and (truncated[i] or last)]
            if cut:  # V(final observation), given this episode's memory
                finals = stack_observations([stepped[i][0] for i in cut], observation_space)
                rows = None if state is None else tuple(part[cut] for part in state)
                no_starts = torch.zeros(len(cut), dtype=torch.bool, device=device)
                bootstrap[cut] = policy.step(to_device(finals, device), rows, no_starts)[1].cpu()
            columns["bootstrap_values"].append(bootstrap)
            for i, (env, (observation, reward, _, _, info)) in enumerate(
                zip(envs, stepped, strict=True)
            ):
                returns[i] += float(reward)
                lengths[i] += 1
                if terminated[i] or truncated[i]:
                    success = info.get("is_success")
                    episode_returns.append(returns[i])
                    episode_lengths.append(lengths[i])
                    episode_successes.append(None if success is None else bool(success))
                    current[i], reset_info = env.reset()
                    starts[i], returns[i], lengths[i] = True, 0.0, 0
                    if life_loss is not None:
                        life_loss.restart(i, int(reset_info["lives"]))
                else:
                    current[i], starts[i] = observation, False
            if last:
                break

    dtypes = {
        "rewards": torch.float32,
        "terminated": torch.bool,
        "truncated": torch.bool,
        "episode_starts": torch.bool,
    }  # the fields gathered as Python lists; the rest are tensors, stacked
    time_fields: dict[str, Any] = {
        name: torch.tensor(rows, dtype=dtypes[name]) if name in dtypes else stack(rows)
        for name, rows in columns.items()
    }
    rollout = Rollout(
        **time_fields,
        initial_state=initial_state,
        episode_returns=episode_returns,
        episode_lengths=episode_lengths,
        episode_successes=episode_successes,
        steps=taken * len(envs),
        version=version,
    )
    lives_out = life_loss.lives if life_loss is not None else [c.lives for c in carries]
    carries_out = [
        Carry(
            current[i],
            None if state is None else tuple(part[i : i + 1] for part in state),
            starts[i],
            returns[i],
            lengths[i],
            lives_out[i],
        )
        for i in range(len(envs))
    ]
    return rollout, carries_out
