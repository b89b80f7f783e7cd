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

Persistence (`files=ReplayFiles(<run>/replay, ...)`, `rlkit.replay_storage`): every array
is a memory-mapped file, so the transitions are on disk as they are written and a
checkpoint holds only the ring indices and the sampling RNG (`state_dict`, which first
flushes the files). Each slot also records its serial, the env's write count when it was
written. The ring has `margin` slots per env beyond the `capacity // num_envs` that
sampling sees, so that what a run writes after a checkpoint (up to `margin` slots per
env) lands outside the slots that checkpoint holds: after a kill -9, `load_state_dict`
with the checkpoint's state gives back exactly the replay as of the checkpoint. Slots
written after it are treated as unwritten (the indices say so) and overwritten as the
run goes on; the one slot per env written both before and after (the newest
observation's action and reward) comes back from the checkpoint. Where more than
`margin` slots were written since (the ring wrapped into the checkpoint's slots), the
serials show which of its oldest slots were overwritten, and those are dropped.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from rlkit.errors import UserError
from rlkit.observations import Part, build_tree, get_part, observation_parts
from rlkit.replay_storage import ArraySpec, ReplayFiles, allocate_in_memory

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


def check_memory(capacity: int, bytes_per_slot: int, margin_slots: int = 0) -> None:
    """UserError naming `buffer_size` unless `capacity` slots (and a persisted replay's
    `margin_slots`) fit in the memory available."""
    needed = (capacity + margin_slots) * bytes_per_slot
    available = available_memory()
    if needed > available:
        fits = max(0, available // bytes_per_slot - margin_slots)
        raise UserError(
            f"replay buffer of {capacity:,} transitions needs {needed / 2**30:.1f} GiB, "
            f"but {available / 2**30:.1f} GiB of memory is available; lower buffer_size "
            f"(about {fits:,} fits)"
        )


def checkpoint_margin(checkpoint_every: int, num_envs: int, slots: int) -> int:
    """Ring slots per env beyond a persisted replay's `slots`, enough for what one
    checkpoint interval writes: each env writes a slot per vector step, and a vector step
    adds fewer than `num_envs` agent steps when envs reset (an eighth is allowed for:
    episodes of 8 steps or more). At most `slots`: the files at most double."""
    return min(slots, math.ceil(checkpoint_every * 9 / 8 / num_envs) + 2)


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
        margin: int = 0,
        files: ReplayFiles | None = None,
    ) -> None:
        self.frame_stack = observation_shape[0] if stacked else 1
        self.frame_shape = observation_shape[1:] if stacked else observation_shape
        self.stacked = stacked
        bytes_per_slot = slot_bytes(self.frame_shape, dtype)
        self._init_slots(capacity, num_envs, n_step, gamma, seed, bytes_per_slot, margin)
        shape = (num_envs, self.ring, *self.frame_shape)
        arrays = self._allocate([ArraySpec("frames", shape, np.dtype(dtype))], files)
        self.frames = arrays["frames"]

    def _init_slots(
        self,
        capacity: int,
        num_envs: int,
        n_step: int,
        gamma: float,
        seed: int,
        bytes_per_slot: int,
        margin: int,
    ) -> None:
        """Check the size and the memory; the ring indices and the sampling RNG."""
        self.num_envs = num_envs
        self.slots = capacity // num_envs  # per env, what sampling sees
        self.margin = margin  # per env, beyond `slots` (a persisted replay, see above)
        self.ring = self.slots + margin  # per env, stored
        self.n_step = n_step
        self.gamma = gamma
        self.bytes_per_slot = bytes_per_slot
        if self.slots < self.frame_stack + n_step + 1:
            raise UserError(
                f"replay buffer of {capacity:,} transitions is too small for {num_envs} envs, "
                f"a stack of {self.frame_stack} and n-step {n_step}; raise buffer_size to at "
                f"least {(self.frame_stack + n_step + 1) * num_envs:,}"
            )
        check_memory(capacity, self.bytes_per_slot, margin * num_envs)
        self.head = np.zeros(num_envs, dtype=np.int64)  # next slot to write, per env
        self.written = np.zeros(num_envs, dtype=np.int64)  # slots written so far, per env
        self.oldest = np.zeros(num_envs, dtype=np.int64)  # serial of the oldest slot kept
        self.current = np.full(num_envs, -1, dtype=np.int64)  # slot of each env's latest obs
        self.rng = np.random.default_rng(seed)

    def _allocate(
        self, observation_specs: list[ArraySpec], files: ReplayFiles | None
    ) -> dict[str, NDArray[Any]]:
        """Every per-slot array, in memory or in `files`; returns them by name (the
        observation arrays are the caller's to keep)."""
        shape = (self.num_envs, self.ring)
        fields = [
            ArraySpec("positions", shape, np.dtype(np.int32)),
            ArraySpec("actions", shape, np.dtype(np.int32)),
            ArraySpec("rewards", shape, np.dtype(np.float32)),
            ArraySpec("has_next", shape, np.dtype(bool)),
            ArraySpec("terminal", shape, np.dtype(bool)),
            ArraySpec("final", shape, np.dtype(bool)),
        ]
        if files is not None:
            fields.append(ArraySpec("serials", shape, np.dtype(np.int64)))
        specs = [*observation_specs, *fields]
        self.files = files
        if files is None:
            arrays, self.reopened = allocate_in_memory(specs), False
        else:
            arrays, self.reopened = files.open(specs)
        self.positions = arrays["positions"]
        self.actions = arrays["actions"]
        self.rewards = arrays["rewards"]
        self.has_next = arrays["has_next"]  # action and reward known, successor stored
        self.terminal = arrays["terminal"]  # the episode terminated at this observation
        self.final = arrays["final"]  # the episode ended (terminated or truncated)
        # the env's write count when the slot was written (persisted replays only)
        self.serials: NDArray[np.int64] | None = arrays.get("serials")
        return arrays

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffer's arrays."""
        arrays = (*self._observation_arrays(), self.positions, self.actions, self.rewards)
        flags = (self.has_next, self.terminal, self.final)
        serials = () if self.serials is None else (self.serials,)
        return sum(array.nbytes for array in (*arrays, *flags, *serials))

    def _observation_arrays(self) -> list[NDArray[Any]]:
        return [self.frames]

    def __len__(self) -> int:
        """Slots filled (about one per transition)."""
        return int(self._filled().sum())

    def _filled(self) -> NDArray[np.int64]:
        """Slots that sampling sees, per env: the newest `slots` written (fewer after a
        restore that found some overwritten)."""
        filled: NDArray[np.int64] = np.minimum(self.written - self.oldest, self.slots)
        return filled

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
        if self.serials is not None:
            self.serials[envs, slots] = self.written[envs]
        self.positions[envs, slots] = positions
        self.has_next[envs, slots] = False
        self.terminal[envs, slots] = terminal
        self.final[envs, slots] = final
        self.current[envs] = slots
        self.head[envs] = (slots + 1) % self.ring
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
        indices = (slots[:, None] - back) % self.ring
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
            next_slots = np.where(open_, (here + 1) % self.ring, here)
            ended = open_ & self.final[envs, next_slots]
            discounts[ended & self.terminal[envs, next_slots]] = 0.0
            open_ &= ~ended
            if step + 1 < self.n_step:
                # an episode still running at the newest slot cannot give n steps yet
                incomplete = open_ & ~self.has_next[envs, next_slots]
                complete &= ~incomplete
                open_ &= ~incomplete
        return complete, returns, next_slots, discounts

    def _valid(
        self, envs: NDArray[np.int64], slots: NDArray[np.int64], filled: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Slots whose stack frames are all among the `filled` newest of their env."""
        age = (self.head[envs] - 1 - slots) % self.ring  # 0 for the newest slot
        reach = np.minimum(self.frame_stack - 1, self.positions[envs, slots])
        valid: NDArray[np.bool_] = age + reach <= filled[envs] - 1
        return valid

    def _slots_of(
        self, envs: NDArray[np.int64], draws: NDArray[np.int64], filled: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """The slot of the `draws`-th oldest of each env's `filled` newest slots (up to a
        rotation: without a margin every slot is in the window once the ring is full)."""
        if self.ring == self.slots and not self.oldest.any():
            return draws
        slots: NDArray[np.int64] = (self.head[envs] - filled[envs] + draws) % self.ring
        return slots

    def sample(self, batch_size: int) -> ReplayBatch:
        """`batch_size` transitions drawn uniformly from the complete ones stored."""
        chosen: list[tuple[NDArray[Any], ...]] = []
        have = 0
        filled = self._filled()
        weights = filled / filled.sum()  # envs in proportion to what they hold
        for _ in range(1000):
            if self.num_envs == 1:
                envs = np.zeros(2 * batch_size, dtype=np.int64)
            else:
                envs = self.rng.choice(self.num_envs, size=2 * batch_size, p=weights)
            slots = self._slots_of(envs, self.rng.integers(filled[envs]), filled)
            keep = self._valid(envs, slots, filled)
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

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of a persisted replay: the ring indices, the sampling RNG
        and the newest slot's action and reward per env (the transitions stay in the
        files). The files are flushed first (msync): a checkpoint never refers to data
        that is not on disk."""
        if self.files is not None:
            self.files.flush()
        envs = np.arange(self.num_envs)
        newest = np.maximum(self.current, 0)
        return {
            "slots": self.slots,
            "ring": self.ring,
            "num_envs": self.num_envs,
            "head": self.head.copy(),
            "written": self.written.copy(),
            "oldest": self.oldest.copy(),
            "current": self.current.copy(),
            "current_actions": self.actions[envs, newest].copy(),
            "current_rewards": self.rewards[envs, newest].copy(),
            "current_has_next": self.has_next[envs, newest].copy(),
            "rng": self.rng.bit_generator.state,
        }

    def matches(self, state: dict[str, Any]) -> bool:
        """`state` is from a replay of this layout, whose files this buffer reopened."""
        layout = (int(state["slots"]), int(state["ring"]), int(state["num_envs"]))
        return self.reopened and layout == (self.slots, self.ring, self.num_envs)

    def load_state_dict(self, state: dict[str, Any]) -> int:
        """The replay as of the checkpoint that saved `state` (see `matches`): its ring
        indices and sampling RNG, and the newest slots' action and reward, which the run
        may have written after the checkpoint. Slots written after it are unwritten again.
        Returns how many of the checkpoint's slots were overwritten since (more than
        `margin` per env written after it): those, the oldest, are dropped."""
        if not self.matches(state) or self.serials is None:
            raise ValueError("replay state of another layout, or a replay without files")
        self.head[:] = np.asarray(state["head"])
        self.written[:] = np.asarray(state["written"])
        self.oldest[:] = np.asarray(state["oldest"])
        self.current[:] = np.asarray(state["current"])
        self.rng.bit_generator.state = state["rng"]
        lost = 0
        for env in range(self.num_envs):
            written = int(self.written[env])
            first = max(int(self.oldest[env]), written - self.slots)
            serials = np.arange(first, written)
            intact = self.serials[env, serials % self.ring] == serials
            if not intact.all():  # overwritten: a prefix (the oldest), as the ring writes
                kept_from = first + int(np.flatnonzero(~intact)[-1]) + 1
                self.oldest[env] = kept_from
                lost += kept_from - first
            if self.current[env] >= 0 and self.oldest[env] < written:
                newest = self.current[env]
                self.actions[env, newest] = np.asarray(state["current_actions"])[env]
                self.rewards[env, newest] = np.asarray(state["current_rewards"])[env]
                self.has_next[env, newest] = np.asarray(state["current_has_next"])[env]
        return lost


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
        margin: int = 0,
        files: ReplayFiles | None = None,
    ) -> None:
        self.observation_space = observation_space
        self.parts = [part for part in observation_parts(observation_space) if part.kept]
        if not self.parts:
            raise UserError(f"no part of observation space {observation_space} can be replayed")
        self.frame_stack = 1
        self.frame_shape = ()
        self.stacked = False
        bytes_per_slot = replay_slot_bytes(observation_space)
        self._init_slots(capacity, num_envs, n_step, gamma, seed, bytes_per_slot, margin)
        specs = [
            ArraySpec(f"part{number}", (num_envs, self.ring, *part.shape), storage_dtype(part))
            for number, part in enumerate(self.parts)
        ]
        arrays = self._allocate(specs, files)
        self.part_arrays = [arrays[spec.name] for spec in specs]

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
    margin: int = 0,
    files: ReplayFiles | None = None,
) -> ReplayBuffer:
    """`ReplayBuffer` for a Box (frames of Atari stacks when `stacked`), exactly as built
    today; `PartReplayBuffer` for every other space. With `files`, persisted (see the
    module's docstring), with `margin` slots per env beyond `capacity // num_envs`."""
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
            margin=margin,
            files=files,
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
        margin=margin,
        files=files,
    )
