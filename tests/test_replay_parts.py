"""Replay of Dict, Tuple and Discrete observations: each part in its own compact array."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import minatar.gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import numpy as np
import pytest

from rlkit.errors import UserError
from rlkit.observations import index, map_leaves, observation_arrays, observation_parts
from rlkit.replay import (
    PartReplayBuffer,
    ReplayBuffer,
    make_replay_buffer,
    replay_slot_bytes,
    storage_dtype,
)
from tests.spaces_envs import DICT_CUE_ID
from tests.test_replay import CodedEnvs

MINIGRID = "MiniGrid-Empty-5x5-v0"
MINATAR = "MinAtar/Breakout-v1"


def test_bytes_per_transition_of_minigrid_and_minatar() -> None:
    """The figures rlkit.replay's docstring quotes (per slot, about one transition)."""
    minigrid_space = gym.make(MINIGRID).observation_space
    assert replay_slot_bytes(minigrid_space) == 7 * 7 * 3 + 1 + 15  # uint8 image, uint8 direction
    if MINATAR not in gym.registry:
        minatar.gym.register_envs()
    minatar_space = gym.make(MINATAR).observation_space
    assert isinstance(minatar_space, gym.spaces.Box) and minatar_space.dtype == np.bool_
    assert replay_slot_bytes(minatar_space) == 10 * 10 * 4 + 15  # a bool Box: 1 byte a cell
    buffer = make_replay_buffer(minigrid_space, capacity=1_000, num_envs=2)
    assert isinstance(buffer, PartReplayBuffer)
    assert buffer.bytes_per_slot == 163 and buffer.nbytes == 1_000 * 163
    assert [array.dtype for array in buffer.part_arrays] == [np.uint8, np.uint8]
    box = make_replay_buffer(minatar_space, capacity=1_000, num_envs=2)
    assert type(box) is ReplayBuffer and box.frames.dtype == np.bool_ and box.nbytes == 415_000


@pytest.mark.parametrize(
    ("space", "dtype"),
    [
        (gym.spaces.Discrete(4), np.uint8),
        (gym.spaces.Discrete(256), np.uint8),
        (gym.spaces.Discrete(257), np.uint16),
        (gym.spaces.Discrete(3, start=-1), np.int8),
        (gym.spaces.Discrete(200, start=-1), np.int16),
        (gym.spaces.Discrete(2**40), np.uint64),
        (gym.spaces.MultiDiscrete([2, 1000]), np.uint16),
        (gym.spaces.MultiBinary(3), np.int8),
        (gym.spaces.Box(0, 255, (2,), np.uint8), np.uint8),
        (gym.spaces.Box(0, 1, (2,), np.bool_), np.bool_),
        (gym.spaces.Box(-1, 1, (2,), np.float64), np.float32),
    ],
)
def test_each_part_is_stored_in_a_compact_dtype(space: gym.Space[Any], dtype: type) -> None:
    [part] = observation_parts(space)
    assert storage_dtype(part) == np.dtype(dtype)


def test_parts_replay_exactly_what_a_box_buffer_replays() -> None:
    """The same coded episodes as a Box and as a Dict part: the same samples, same RNG."""
    coded_space = gym.spaces.Box(0, 1000, (3,), np.int32)
    dict_space = gym.spaces.Dict(
        {"frame": coded_space, "note": gym.spaces.Text(4), "step": gym.spaces.Discrete(1000)}
    )
    settings: dict[str, Any] = {"capacity": 120, "num_envs": 3, "n_step": 3, "gamma": 0.9}
    box = ReplayBuffer(observation_shape=(3,), dtype=np.int32, stacked=False, **settings)
    parts = PartReplayBuffer(observation_space=dict_space, **settings)

    def as_dict(frames: np.ndarray) -> dict[str, Any]:
        return {"frame": frames, "note": ("text",) * len(frames), "step": frames[:, 2]}

    envs = CodedEnvs(3)
    frames = envs.reset()[:, -1]
    for buffer, observations in ((box, frames), (parts, as_dict(frames))):
        buffer.start_episodes(np.arange(3), observations)
    resetting = np.zeros(3, dtype=bool)
    for _ in range(200):
        actions = envs.t * 10 + envs.episode % 10
        stacks, rewards, terminated, truncated = envs.step(resetting)
        frames = stacks[:, -1]
        stepped = np.flatnonzero(~resetting)
        for buffer, observations in ((box, frames), (parts, as_dict(frames))):
            buffer.add(
                stepped,
                actions[stepped],
                rewards[stepped],
                observations[stepped] if buffer is box else _rows(observations, stepped),
                terminated[stepped],
                truncated[stepped],
            )
            if resetting.any():
                restart = np.flatnonzero(resetting)
                rows = observations[restart] if buffer is box else _rows(observations, restart)
                buffer.start_episodes(restart, rows)
        resetting = terminated | truncated
    for _ in range(5):
        expected, got = box.sample(32), parts.sample(32)
        assert set(got.observations) == {"frame", "step"}  # the Text part is not stored
        np.testing.assert_array_equal(got.observations["frame"], expected.observations)
        np.testing.assert_array_equal(got.next_observations["frame"], expected.next_observations)
        np.testing.assert_array_equal(got.observations["step"], expected.observations[:, 2])
        assert got.observations["step"].dtype == np.int64  # stored as uint16, sampled int64
        for name in ("actions", "rewards", "discounts"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))


def _rows(observations: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Rows of a vector env's Dict observation whose Text part is a tuple of strings."""
    return {
        "frame": observations["frame"][rows],
        "note": tuple(observations["note"][i] for i in rows),
        "step": observations["step"][rows],
    }


def test_real_minigrid_transitions_come_back_exactly() -> None:
    """A gymnasium vector env of MiniGrid, stepped as DQN steps one (NEXT_STEP autoreset):
    every sampled (observation, action, next observation) happened."""
    envs = gym.vector.SyncVectorEnv(
        [lambda: gym.make(MINIGRID, max_steps=12) for _ in range(3)],
        autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
    )
    space = envs.single_observation_space
    buffer = make_replay_buffer(space, capacity=600, num_envs=3, seed=1)
    raw, _ = envs.reset(seed=3)
    observations = observation_arrays(raw, space)  # the mission strings left out
    assert set(observations) == {"direction", "image"}
    envs.action_space.seed(3)
    buffer.start_episodes(np.arange(3), observations)
    happened: set[tuple[bytes, int, int, bytes, int]] = set()
    resetting = np.zeros(3, dtype=bool)
    for _ in range(150):
        actions = envs.action_space.sample()
        raw, rewards, terminated, truncated, _ = envs.step(actions)
        following = observation_arrays(raw, space)
        stepped = np.flatnonzero(~resetting)
        for i in stepped.tolist():
            happened.add(_key(observations, i, int(actions[i]), following))
        buffer.add(
            stepped,
            actions[stepped],
            rewards[stepped],
            index(following, stepped),
            terminated[stepped],
            truncated[stepped],
        )
        if resetting.any():
            buffer.start_episodes(np.flatnonzero(resetting), index(following, resetting))
        resetting = terminated | truncated
        observations = following
    batch = buffer.sample(64)
    assert batch.observations["image"].dtype == np.uint8
    assert batch.observations["direction"].dtype == np.int64
    for row in range(64):
        key = _key(batch.observations, row, int(batch.actions[row]), batch.next_observations)
        assert key in happened


def _key(
    observations: dict[str, Any], row: int, action: int, following: dict[str, Any]
) -> tuple[bytes, int, int, bytes, int]:
    return (
        observations["image"][row].tobytes(),
        int(observations["direction"][row]),
        action,
        following["image"][row].tobytes(),
        int(following["direction"][row]),
    )


def test_tuple_parts_come_back_in_a_tuple_with_none_for_dropped_ones() -> None:
    env = gym.make(DICT_CUE_ID, structure="tuple")
    space = env.observation_space
    buffer = make_replay_buffer(space, capacity=20, num_envs=1)

    def one_row(observation: Any) -> Any:
        return map_leaves(
            lambda part: np.asarray(part)[None], observation_arrays(observation, space)
        )

    observation, _ = env.reset(seed=0)
    buffer.start_episodes(np.arange(1), one_row(observation))
    for _ in range(5):
        observation, reward, terminated, truncated, _ = env.step(0)
        rows = one_row(observation)
        buffer.add(np.arange(1), np.zeros(1), np.array([reward]), rows, [terminated], [truncated])
    sample = buffer.sample(4).next_observations
    image, cue, (vector, flags), mission = sample
    assert mission is None
    assert (image.dtype, cue.dtype, vector.dtype, flags.dtype) == (
        np.uint8,
        np.int64,
        np.float32,
        np.int8,
    )
    assert image.shape == (4, 5, 5, 3) and set(cue.tolist()) <= {1, 2}


def test_a_parts_buffer_too_big_for_memory_is_refused_naming_buffer_size() -> None:
    space = gym.make(MINIGRID).observation_space
    with pytest.raises(UserError, match="lower buffer_size"):
        make_replay_buffer(space, capacity=10**14, num_envs=1)
    with pytest.raises(UserError, match="no part of observation space"):
        PartReplayBuffer(capacity=100, num_envs=1, observation_space=gym.spaces.Text(3))
