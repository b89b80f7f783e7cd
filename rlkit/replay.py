"""Replay memory for off-policy agents: each frame stored once, stacks assembled on sampling.

    buffer = ReplayBuffer(capacity=1_000_000, num_envs=8, observation_shape=(4, 84, 84),
                          dtype=np.uint8, stacked=True, n_step=1, gamma=0.99, seed=0)
    buffer.start_episodes(env_indices, first_observations)
    buffer.add(env_indices, actions, rewards, next_observations, terminated, truncated)
    batch = buffer.sample(32)        # observations, actions, rewards, next, discounts

Layout. Every env has its own ring of `capacity // num_envs` slots, so envs that write
interleaved never share an episode. A slot holds one observation's newest frame (the
last frame of an Atari stack, or the whole observation when `stacked` is False), its
position in the episode, and, once the next step is known, the action taken from it
and the reward that followed. An episode of L steps takes L + 1 slots: the last one
holds the final observation, which a truncated episode bootstraps from. An Atari frame
is 7,056 bytes and a slot 7,070, so a transition costs about 7.07 KB, against 56 KB for
storing both 4-frame observations.

Sampling draws slots uniformly among those that start a complete transition, rebuilds
the stack from the slots before it in the same episode (zeros before the episode's
first frame, as the environments pad their own stacks), and forms the n-step target:
rewards summed over up to n steps, the observation m <= n steps later, and the
discount gamma**m, or 0 when the episode terminated within those steps. Truncation
(a time limit) is not termination: it bootstraps from the final observation.

Observations that are not a Box (Dict, Tuple, Discrete, MultiDiscrete, MultiBinary):
`PartReplayBuffer` keeps each part in its own array and compact dtype (uint8 stays
uint8, bool stays bool, Discrete in the smallest integer type that holds it), with the
same episodes, sampling and targets. `make_replay_buffer(space, ...)` picks the class
and `replay_slot_bytes(space)` gives a slot's bytes: 163 for MiniGrid-Empty-5x5-v0
(7x7x3 image + direction), 415 for MinAtar Breakout (a 10x10x4 bool Box).

Before allocating, the buffer checks that it fits in the memory available and raises
a UserError naming `buffer_size` if it does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from rlkit.errors import UserError
from rlkit.observations import Part, build_tree, get_part, observation_parts

# Per slot besides the frame: position (int32), action (int32), reward (float32),
# and three flags (has a successor, terminal, final).
_SLOT_OVERHEAD = 4 + 4 + 4 + 3


@dataclass(frozen=True)
class ReplayBatch:
    observations: Any  # an array [B, ...] (Box), else a tree of arrays (rlkit.observations)
    actions: NDArray[np.int64]
    rewards: NDArray[np.float32]
    next_observations: Any
    discounts: NDArray[np.float32]  # gamma**m, 0 where the episode terminated


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux MemAvailable, else free pages)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(capacity: int, bytes_per_slot: int) -> None:
    """UserError naming `buffer_size` unless `capacity` slots fit in the memory available."""
    needed = capacity * bytes_per_slot
    available = available_memory()
    if needed > available:
        raise UserError(
            f"replay buffer of {capacity:,} transitions needs {needed / 2**30:.1f} GiB, "
            f"but {available / 2**30:.1f} GiB of memory is available; lower buffer_size "
            f"(about {available // bytes_per_slot:,} fits)"
        )


def slot_bytes(frame_shape: tuple[int, ...], dtype: Any) -> int:
    """Bytes one slot takes: its frame and the per-step fields."""
    return int(np.prod(frame_shape)) * int(np.dtype(dtype).itemsize) + _SLOT_OVERHEAD


class ReplayBuffer:
    """Uniform experience replay with frame de-duplication and n-step targets."""

    def __init__(
        self,
        *,
        capacity: int,
        num_envs: int,
        observation_shape: tuple[int, ...],
        dtype: Any,
        stacked: bool,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
    ) -> None:
        self.frame_stack = observation_shape[0] if stacked else 1
        self.frame_shape = observation_shape[1:] if stacked else observation_shape
        self.stacked = stacked
        bytes_per_slot = slot_bytes(self.frame_shape, dtype)
        self._init_slots(capacity, num_envs, n_step, gamma, seed, bytes_per_slot)
        self.frames = np.zeros((num_envs, self.slots, *self.frame_shape), dtype=dtype)

    def _init_slots(
        self,
        capacity: int,
        num_envs: int,
        n_step: int,
        gamma: float,
        seed: int,
        bytes_per_slot: int,
    ) -> None:
        """Check the size and the memory, then allocate every per-slot field but the
        observations (`frames` here, one array per part in `PartReplayBuffer`)."""
        self.num_envs = num_envs
        self.slots = capacity // num_envs
        self.n_step = n_step
        self.gamma = gamma
        self.bytes_per_slot = bytes_per_slot
        if self.slots < self.frame_stack + n_step + 1:
            raise UserError(
                f"replay buffer of {capacity:,} transitions is too small for {num_envs} envs, "
                f"a stack of {self.frame_stack} and n-step {n_step}; raise buffer_size to at "
                f"least {(self.frame_stack + n_step + 1) * num_envs:,}"
            )
        check_memory(capacity, self.bytes_per_slot)
        shape = (num_envs, self.slots)
        self.positions = np.zeros(shape, dtype=np.int32)
        self.actions = np.zeros(shape, dtype=np.int32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.has_next = np.zeros(shape, dtype=bool)  # action and reward known, successor stored
        self.terminal = np.zeros(shape, dtype=bool)  # the episode terminated at this observation
        self.final = np.zeros(shape, dtype=bool)  # the episode ended (terminated or truncated)
        self.head = np.zeros(num_envs, dtype=np.int64)  # next slot to write, per env
        self.written = np.zeros(num_envs, dtype=np.int64)  # slots written so far, per env
        self.current = np.full(num_envs, -1, dtype=np.int64)  # slot of each env's latest obs
        self.rng = np.random.default_rng(seed)

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays."""
        arrays = (*self._observation_arrays(), self.positions, self.actions, self.rewards)
        flags = (self.has_next, self.terminal, self.final)
        return sum(array.nbytes for array in (*arrays, *flags))

    def _observation_arrays(self) -> list[NDArray[Any]]:
        return [self.frames]

    def __len__(self) -> int:
        """Slots filled (about one per transition)."""
        return int(np.minimum(self.written, self.slots).sum())

    def _newest_frames(self, observations: NDArray[Any]) -> NDArray[Any]:
        return observations[:, -1] if self.stacked else observations

    def _store(self, envs: NDArray[np.int64], slots: NDArray[np.int64], observations: Any) -> None:
        """Write the observations of `envs` (rows aligned with them) into their slots."""
        self.frames[envs, slots] = self._newest_frames(np.asarray(observations))

    def _gather(self, envs: NDArray[np.int64], slots: NDArray[np.int64]) -> Any:
        """The stored observations at (env, slot), unstacked."""
        frames: NDArray[Any] = self.frames[envs, slots]
        return frames

    def _write(
        self,
        envs: NDArray[np.int64],
        observations: Any,
        positions: NDArray[Any],
        terminal: NDArray[np.bool_],
        final: NDArray[np.bool_],
    ) -> None:
        slots = self.head[envs]
        self._store(envs, slots, observations)
        self.positions[envs, slots] = positions
        self.has_next[envs, slots] = False
        self.terminal[envs, slots] = terminal
        self.final[envs, slots] = final
        self.current[envs] = slots
        self.head[envs] = (slots + 1) % self.slots
        self.written[envs] += 1

    def start_episodes(self, env_indices: NDArray[Any], observations: Any) -> None:
        """Store the first observation of a new episode in each of `env_indices`."""
        envs = np.asarray(env_indices, dtype=np.int64)
        none = np.zeros(len(envs), dtype=bool)
        self._write(envs, observations, np.zeros(len(envs)), none, none)

    def add(
        self,
        env_indices: NDArray[Any],
        actions: NDArray[Any],
        rewards: NDArray[Any],
        next_observations: Any,
        terminated: NDArray[np.bool_],
        truncated: NDArray[np.bool_],
    ) -> None:
        """One step of each env in `env_indices` (distinct), from its latest observation."""
        envs = np.asarray(env_indices, dtype=np.int64)
        if len(envs) == 0:
            return
        slots = self.current[envs]
        if (slots < 0).any():
            raise RuntimeError("ReplayBuffer.add before start_episodes for that env")
        self.actions[envs, slots] = actions
        self.rewards[envs, slots] = rewards
        self.has_next[envs, slots] = True
        terminated = np.asarray(terminated, dtype=bool)
        final = terminated | np.asarray(truncated, dtype=bool)
        positions = self.positions[envs, slots] + 1
        self._write(envs, next_observations, positions, terminated, final)

    def _stacks(self, envs: NDArray[np.int64], slots: NDArray[np.int64]) -> Any:
        """Observations at (env, slot): frames of the same episode, zeros before its start."""
        if not self.stacked:
            return self._gather(envs, slots)
        back = np.arange(self.frame_stack - 1, -1, -1)  # oldest frame first
        indices = (slots[:, None] - back) % self.slots
        stacks: NDArray[Any] = self.frames[envs[:, None], indices]
        before_start = back > self.positions[envs, slots][:, None]
        stacks[before_start] = 0
        return stacks

    def _targets(
        self, envs: NDArray[np.int64], slots: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
        """(complete, n-step reward sum, slot of the next observation, discount) per sample."""
        count = len(envs)
        complete = self.has_next[envs, slots].copy()
        returns = np.zeros(count, dtype=np.float32)
        discounts = np.ones(count, dtype=np.float32)
        next_slots = slots.copy()
        open_ = complete.copy()  # still walking forward
        for step in range(self.n_step):
            here = next_slots
            returns[open_] += discounts[open_] * self.rewards[envs[open_], here[open_]]
            discounts[open_] *= self.gamma
            next_slots = np.where(open_, (here + 1) % self.slots, here)
            ended = open_ & self.final[envs, next_slots]
            discounts[ended & self.terminal[envs, next_slots]] = 0.0
            open_ &= ~ended
            if step + 1 < self.n_step:
                # an episode still running at the newest slot cannot give n steps yet
                incomplete = open_ & ~self.has_next[envs, next_slots]
                complete &= ~incomplete
                open_ &= ~incomplete
        return complete, returns, next_slots, discounts

    def _valid(self, envs: NDArray[np.int64], slots: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Slots whose stack frames have not been overwritten by newer ones."""
        age = (self.head[envs] - 1 - slots) % self.slots  # 0 for the newest slot
        reach = np.minimum(self.frame_stack - 1, self.positions[envs, slots])
        valid: NDArray[np.bool_] = age + reach <= self.slots - 1
        return valid

    def sample(self, batch_size: int) -> ReplayBatch:
        """`batch_size` transitions drawn uniformly from the complete ones stored."""
        chosen: list[tuple[NDArray[Any], ...]] = []
        have = 0
        filled = np.minimum(self.written, self.slots)
        weights = filled / filled.sum()  # envs in proportion to what they hold
        for _ in range(1000):
            if self.num_envs == 1:
                envs = np.zeros(2 * batch_size, dtype=np.int64)
            else:
                envs = self.rng.choice(self.num_envs, size=2 * batch_size, p=weights)
            slots = self.rng.integers(filled[envs])
            keep = self._valid(envs, slots)
            envs, slots = envs[keep], slots[keep]
            complete, returns, next_slots, discounts = self._targets(envs, slots)
            chosen.append(
                tuple(part[complete] for part in (envs, slots, returns, next_slots, discounts))
            )
            have += int(complete.sum())
            if have >= batch_size:
                break
        else:
            raise RuntimeError("ReplayBuffer.sample: no complete transition stored yet")
        parts = (
            chosen[0] if len(chosen) == 1 else tuple(map(np.concatenate, zip(*chosen, strict=True)))
        )
        envs, slots, returns, next_slots, discounts = (part[:batch_size] for part in parts)
        return ReplayBatch(
            observations=self._stacks(envs, slots),
            actions=self.actions[envs, slots].astype(np.int64),
            rewards=returns,
            next_observations=self._stacks(envs, next_slots),
            discounts=discounts,
        )


_INTEGER_TYPES = (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64)


def _integer_dtype(low: int, high: int) -> np.dtype[Any]:
    """The smallest integer dtype that holds every value in [low, high]."""
    for candidate in _INTEGER_TYPES:
        limits = np.iinfo(candidate)
        if limits.min <= low and high <= limits.max:
            return np.dtype(candidate)
    return np.dtype(np.int64)


def storage_dtype(part: Part) -> np.dtype[Any]:
    """The dtype a replay slot keeps a part in: Discrete and MultiDiscrete in the smallest
    integer type that holds every value (uint8 for up to 256), float64 as float32, every
    other Box and MultiBinary in its own dtype (uint8 stays uint8, bool stays bool)."""
    space = part.space
    if isinstance(space, gym.spaces.Discrete):
        return _integer_dtype(int(space.start), int(space.start) + int(space.n) - 1)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return _integer_dtype(int(space.start.min()), int((space.start + space.nvec).max()) - 1)
    dtype = np.dtype(space.dtype)
    return np.dtype(np.float32) if dtype == np.float64 else dtype


def replay_slot_bytes(observation_space: gym.Space[Any], *, stacked: bool = False) -> int:
    """Bytes one replay slot takes, about one transition's: a Box as `ReplayBuffer` stores
    it (one frame of a stack when `stacked`), any other space as `PartReplayBuffer` does."""
    if isinstance(observation_space, gym.spaces.Box):
        shape = observation_space.shape
        return slot_bytes(shape[1:] if stacked else shape, observation_space.dtype)
    parts = [part for part in observation_parts(observation_space) if part.kept]
    observation = sum(int(np.prod(part.shape)) * storage_dtype(part).itemsize for part in parts)
    return observation + _SLOT_OVERHEAD


class PartReplayBuffer(ReplayBuffer):
    """`ReplayBuffer` for Dict, Tuple, Discrete, MultiDiscrete and MultiBinary observations.

    Each part the networks use (`rlkit.observations.observation_parts`) has its own array
    [num_envs, slots, *part shape] in its `storage_dtype`: a MiniGrid observation (7x7x3
    uint8 image, Discrete(4) direction; the mission string is dropped) takes 148 bytes,
    a slot 163. Episodes, sampling and n-step targets are `ReplayBuffer`'s; there is no
    frame stacking. `add` and `start_episodes` take observations as a gymnasium vector
    env batches them (a dict/tuple of arrays with a leading env axis, rows aligned with
    `env_indices`; `rlkit.observations.index` picks rows); `sample` returns them as a
    tree of arrays [B, ...] in the dtypes `rlkit.observations.observation_arrays` gives
    (Discrete as int64), dropped parts left out.
    """

    def __init__(
        self,
        *,
        capacity: int,
        num_envs: int,
        observation_space: gym.Space[Any],
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
    ) -> None:
        self.observation_space = observation_space
        self.parts = [part for part in observation_parts(observation_space) if part.kept]
        if not self.parts:
            raise UserError(f"no part of observation space {observation_space} can be replayed")
        self.frame_stack = 1
        self.frame_shape = ()
        self.stacked = False
        bytes_per_slot = replay_slot_bytes(observation_space)
        self._init_slots(capacity, num_envs, n_step, gamma, seed, bytes_per_slot)
        self.part_arrays = [
            np.zeros((num_envs, self.slots, *part.shape), dtype=storage_dtype(part))
            for part in self.parts
        ]

    def _observation_arrays(self) -> list[NDArray[Any]]:
        return self.part_arrays

    def _store(self, envs: NDArray[np.int64], slots: NDArray[np.int64], observations: Any) -> None:
        for part, array in zip(self.parts, self.part_arrays, strict=True):
            array[envs, slots] = get_part(observations, part.path)

    def _gather(self, envs: NDArray[np.int64], slots: NDArray[np.int64]) -> Any:
        gathered = {
            part.path: array[envs, slots].astype(part.dtype, copy=False)
            for part, array in zip(self.parts, self.part_arrays, strict=True)
        }
        return build_tree(self.observation_space, gathered.__getitem__)


def make_replay_buffer(
    observation_space: gym.Space[Any],
    *,
    capacity: int,
    num_envs: int,
    stacked: bool = False,
    n_step: int = 1,
    gamma: float = 0.99,
    seed: int = 0,
) -> ReplayBuffer:
    """`ReplayBuffer` for a Box (frames of Atari stacks when `stacked`), exactly as built
    today; `PartReplayBuffer` for every other space."""
    if isinstance(observation_space, gym.spaces.Box):
        return ReplayBuffer(
            capacity=capacity,
            num_envs=num_envs,
            observation_shape=observation_space.shape,
            dtype=observation_space.dtype,
            stacked=stacked,
            n_step=n_step,
            gamma=gamma,
            seed=seed,
        )
    if stacked:
        raise ValueError(f"frame stacks are Box observations; got {observation_space}")
    return PartReplayBuffer(
        capacity=capacity,
        num_envs=num_envs,
        observation_space=observation_space,
        n_step=n_step,
        gamma=gamma,
        seed=seed,
    )
