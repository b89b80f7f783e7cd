"""A run's replay memory: made for the run (in its run dir when persisted), restored on resume.

    buffer = make_run_replay(run, space, num_envs, capacity=..., n_step=..., gamma=...,
                             seed=..., persist=True, step=agent.step)
    restored = restore_run_replay(buffer, saved_state, run, step=agent.step)

Any off-policy agent uses these two: with `persist`, the replay lives in memory-mapped
files in `<run>/replay/` (`rlkit.replay_storage`) with a margin of one checkpoint interval
(`rlkit.replay.checkpoint_margin`), and a checkpoint keeps only its ring indices; a
resumed run gets the replay back as of its checkpoint. Without, the replay is in memory
and a resumed run refills it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

from rlkit.replay import ReplayBuffer, checkpoint_margin, make_replay_buffer
from rlkit.replay_storage import REPLAY_DIR, ReplayFiles

if TYPE_CHECKING:
    from rlkit.run import Run


def make_run_replay(
    run: Run,
    space: gym.Space[Any],
    num_envs: int,
    *,
    capacity: int,
    n_step: int,
    gamma: float,
    seed: int,
    persist: bool,
    step: int,
) -> ReplayBuffer:
    """The replay of a run: in `<run>/replay/` files when `persist`, else in memory."""
    files = None
    margin = 0
    if persist:
        remedy = (
            f"or set persist_replay: false in {run.config_file}"
            if step > 0
            else "lower buffer_size or set persist_replay=false"
        )
        files = ReplayFiles(run.run_dir / REPLAY_DIR, remedy=remedy)
        slots = capacity // num_envs
        margin = checkpoint_margin(run.settings.checkpoint_every, num_envs, slots)
    return make_replay_buffer(
        space,
        capacity=capacity,
        num_envs=num_envs,
        stacked=run.frame_stacked,
        n_step=n_step,
        gamma=gamma,
        seed=seed,
        margin=margin,
        files=files,
    )


def restore_run_replay(
    buffer: ReplayBuffer, state: dict[str, Any] | None, run: Run, *, step: int
) -> bool:
    """The replay as of the checkpoint a run resumed from (its saved `state`), when it was
    persisted; False when there is none to restore (a new run, or an older run dir)."""
    if buffer.files is None or step == 0:
        return False
    where = buffer.files.directory
    if state is None:
        run.note(
            f"replay: none in the checkpoint (an older run dir, or persist_replay was off); "
            f"refilling {where}"
        )
        return False
    if not buffer.matches(state):
        run.note(f"replay: no files in {where} that match the checkpoint; refilling")
        return False
    lost = buffer.load_state_dict(state)
    dropped = f"; {lost:,} of its slots, overwritten since, dropped" if lost else ""
    run.note(f"replay: {len(buffer):,} slots as of step {step} from {where}{dropped}")
    return True
