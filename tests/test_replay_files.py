"""A persisted replay: memory-mapped files, restore as of a checkpoint, full disks."""

from __future__ import annotations

import copy
import errno
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlkit.errors import UserError
from rlkit.replay import PartReplayBuffer, ReplayBuffer, checkpoint_margin, make_replay_buffer
from rlkit.replay_storage import ReplayFiles
from tests.test_replay import GAMMA, STACK, CodedEnvs, assert_samples_exact

NUM_ENVS = 3
CAPACITY = 60  # 20 slots per env: the rings wrap many times
MARGIN = 7
REMEDY = "lower buffer_size"


def coded_buffer(directory: Path | None, *, margin: int = MARGIN, n_step: int = 3) -> ReplayBuffer:
    files = None if directory is None else ReplayFiles(directory, remedy=REMEDY)
    return ReplayBuffer(
        capacity=CAPACITY,
        num_envs=NUM_ENVS,
        observation_shape=(STACK, 3),
        dtype=np.int32,
        stacked=True,
        n_step=n_step,
        gamma=GAMMA,
        seed=1,
        margin=margin,
        files=files,
    )


class Filler:
    """Steps `CodedEnvs` into a buffer as DQN's loop does (NEXT_STEP autoreset), across
    calls; `restart` begins new episodes everywhere, as a resumed run's env reset does."""

    def __init__(self, buffer: ReplayBuffer, envs: CodedEnvs) -> None:
        self.buffer = buffer
        self.envs = envs
        self.restart()

    def restart(self) -> None:
        envs = self.envs
        if envs.t.any():  # cut the running episodes
            envs.episode += 1
            envs.t[:] = 0
        self.buffer.start_episodes(np.arange(envs.num_envs), envs.reset())
        self.resetting = np.zeros(envs.num_envs, dtype=bool)

    def steps(self, count: int) -> None:
        envs, buffer = self.envs, self.buffer
        for _ in range(count):
            actions = envs.t * 10 + envs.episode % 10
            observations, rewards, terminated, truncated = envs.step(self.resetting)
            stepped = np.flatnonzero(~self.resetting)
            buffer.add(
                stepped,
                actions[stepped],
                rewards[stepped],
                observations[stepped],
                terminated[stepped],
                truncated[stepped],
            )
            if self.resetting.any():
                started = np.flatnonzero(self.resetting)
                buffer.start_episodes(started, observations[started])
            self.resetting = terminated | truncated


def window(buffer: ReplayBuffer) -> list[dict[str, np.ndarray]]:
    """What sampling can see, per env, oldest slot first, whatever the ring's rotation."""
    seen = []
    for env in range(buffer.num_envs):
        written = int(buffer.written[env])
        serials = np.arange(written - int(buffer._filled()[env]), written)
        slots = serials % buffer.ring
        fields = {
            "frames": buffer.frames,
            "positions": buffer.positions,
            "actions": buffer.actions,
            "rewards": buffer.rewards,
            "has_next": buffer.has_next,
            "terminal": buffer.terminal,
            "final": buffer.final,
        }
        seen.append({name: array[env, slots].copy() for name, array in fields.items()})
    return seen


def assert_same_window(got: list[dict[str, np.ndarray]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for env, (have, expected) in enumerate(zip(got, want, strict=True)):
        for name in expected:
            np.testing.assert_array_equal(have[name], expected[name], err_msg=f"env {env} {name}")


def assert_same_batch(got: Any, want: Any) -> None:
    for name in ("observations", "actions", "rewards", "next_observations", "discounts"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)


@pytest.mark.parametrize("n_step", [1, 3])
@pytest.mark.parametrize("persisted", [False, True])
def test_a_ring_with_a_margin_samples_exact_transitions(
    n_step: int, persisted: bool, tmp_path: Path
) -> None:
    buffer = coded_buffer(tmp_path / "replay" if persisted else None, n_step=n_step)
    assert buffer.ring == CAPACITY // NUM_ENVS + MARGIN
    Filler(buffer, CodedEnvs(NUM_ENVS)).steps(400)
    assert len(buffer) == CAPACITY  # the margin holds slots sampling does not see
    assert_samples_exact(buffer, n_step)


# after the checkpoint at 100 steps the run goes on for 0, 1, MARGIN or more steps; at
# 100 steps (+1 slot per episode) each env's ring of 27 has wrapped about 4 times
@pytest.mark.parametrize("after", [0, 1, 5, MARGIN])
def test_a_restore_gives_the_replay_as_of_the_checkpoint(after: int, tmp_path: Path) -> None:
    buffer = coded_buffer(tmp_path)
    filler = Filler(buffer, CodedEnvs(NUM_ENVS))
    filler.steps(100)
    state = buffer.state_dict()
    assert (buffer.written > buffer.ring).all()
    at_checkpoint = window(buffer)
    envs_at_checkpoint = copy.deepcopy(filler.envs)
    batch_at_checkpoint = buffer.sample(64)  # the sampling RNG as the checkpoint has it
    filler.steps(after)  # the run goes on, then is killed: nothing else is saved
    del buffer, filler

    restored = coded_buffer(tmp_path)
    assert restored.reopened and restored.matches(state)
    assert restored.load_state_dict(state) == 0
    assert_same_window(window(restored), at_checkpoint)
    assert_same_batch(restored.sample(64), batch_at_checkpoint)
    # it goes on from there: new episodes overwrite what the killed run wrote
    Filler(restored, envs_at_checkpoint).steps(150)
    assert_samples_exact(restored, n_step=3)


def test_writes_past_the_margin_drop_the_oldest_slots(tmp_path: Path) -> None:
    buffer = coded_buffer(tmp_path)
    filler = Filler(buffer, CodedEnvs(NUM_ENVS))
    filler.steps(100)
    state = buffer.state_dict()
    at_checkpoint = window(buffer)
    filler.steps(MARGIN + 4)  # 4 slots per env into the checkpoint's oldest
    del buffer, filler

    restored = coded_buffer(tmp_path)
    assert restored.load_state_dict(state) == 4 * NUM_ENVS
    assert len(restored) == CAPACITY - 4 * NUM_ENVS
    kept = [{name: values[4:] for name, values in env.items()} for env in at_checkpoint]
    assert_same_window(window(restored), kept)
    assert_samples_exact(restored, n_step=3)


def test_files_of_another_layout_are_made_new(tmp_path: Path) -> None:
    buffer = coded_buffer(tmp_path)
    Filler(buffer, CodedEnvs(NUM_ENVS)).steps(30)
    state = buffer.state_dict()
    del buffer
    other = coded_buffer(tmp_path, margin=MARGIN + 1)
    assert not other.reopened and not other.matches(state)
    assert not other.frames.any() and not other.serials.any()
    assert coded_buffer(tmp_path, margin=MARGIN + 1).reopened


def test_an_atari_replay_reserves_its_disk_space(tmp_path: Path) -> None:
    """The files take their whole size on disk at once (not sparse), as `nbytes` says."""
    files = ReplayFiles(tmp_path, remedy=REMEDY)
    buffer = ReplayBuffer(
        capacity=2_000,
        num_envs=2,
        observation_shape=(4, 84, 84),
        dtype=np.uint8,
        stacked=True,
        margin=checkpoint_margin(500, 2, 1_000),
        files=files,
    )
    assert buffer.ring == 1_000 + 284
    assert buffer.nbytes == 2 * 1_284 * (84 * 84 + 15 + 8)  # frame, fields, serial
    assert buffer.nbytes <= files.disk_bytes <= buffer.nbytes + 64 * 1024
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "actions.npy",
        "final.npy",
        "frames.npy",
        "has_next.npy",
        "layout.json",
        "positions.npy",
        "rewards.npy",
        "serials.npy",
        "terminal.npy",
    ]
    frames = np.load(tmp_path / "frames.npy", mmap_mode="r")  # plain .npy files
    assert frames.shape == (2, 1_284, 84, 84) and frames.dtype == np.uint8


def test_a_full_disk_is_refused_before_any_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rlkit.replay_storage.free_bytes", lambda directory: 5 * 2**20)
    directory = tmp_path / "replay"
    with pytest.raises(UserError) as refused:
        ReplayBuffer(
            capacity=100_000,
            num_envs=1,
            observation_shape=(4, 84, 84),
            dtype=np.uint8,
            stacked=True,
            files=ReplayFiles(directory, remedy=REMEDY),
        )
    message = str(refused.value)
    assert "\n" not in message
    assert f"replay files need 675.1 MiB in {directory}, but 5.0 MiB is free" in message
    assert message.endswith("free disk space, lower buffer_size")
    assert not list(directory.iterdir())


def test_a_disk_that_fills_while_reserving_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(UserError, match=r"replay files need .* in .*replay, but"):
        coded_buffer(tmp_path / "replay")
    assert not list((tmp_path / "replay").glob("*.npy"))


def test_a_part_replay_is_restored_too(tmp_path: Path) -> None:
    """Dict observations (one file per part) come back as of the checkpoint."""
    space = gym.spaces.Dict(
        {"image": gym.spaces.Box(0, 255, (3, 3), np.uint8), "cue": gym.spaces.Discrete(5)}
    )

    def make() -> ReplayBuffer:
        files = ReplayFiles(tmp_path, remedy=REMEDY)
        return make_replay_buffer(space, capacity=40, num_envs=2, margin=6, files=files)

    rng = np.random.default_rng(0)

    def observations() -> dict[str, np.ndarray]:
        return {
            "image": rng.integers(0, 256, (2, 3, 3), dtype=np.uint8),
            "cue": rng.integers(0, 5, 2),
        }

    buffer = make()
    assert isinstance(buffer, PartReplayBuffer)
    both = np.arange(2)
    no = np.zeros(2, dtype=bool)
    buffer.start_episodes(both, observations())
    for step in range(50):
        ended = np.full(2, step % 9 == 8)
        buffer.add(both, np.array([step % 3, 1]), np.ones(2), observations(), ended, no)
        if ended.any():
            buffer.start_episodes(both, observations())
    state = buffer.state_dict()
    expected = buffer.sample(16)
    for _ in range(5):  # the run goes on
        buffer.add(both, np.zeros(2), np.zeros(2), observations(), no, no)
    del buffer
    restored = make()
    assert restored.load_state_dict(state) == 0
    batch = restored.sample(16)
    for part in ("image", "cue"):
        np.testing.assert_array_equal(batch.observations[part], expected.observations[part])
        np.testing.assert_array_equal(
            batch.next_observations[part], expected.next_observations[part]
        )
    np.testing.assert_array_equal(batch.actions, expected.actions)
