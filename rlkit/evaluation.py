"""Evaluation: play an agent's evaluation policy for whole episodes, summarise returns.

    stats = evaluate(agent, env, episodes=10)             # `rlkit eval`, eval during training
    episode = play_episode(actor, env, seed=7, max_steps=500)   # one episode (NES's members)

The one loop every evaluation goes through: an actor (`act(observation, state)` and
`initial_state()`: an agent, or `rlkit.policies.GreedyPolicy` for a bare network) plays
from a reset until the episode ends or `max_steps` steps are taken. `evaluate` always
cuts an episode: at the env's own time limit, else at `DEFAULT_MAX_EPISODE_STEPS`
(`rlkit eval --max-episode-steps` changes it), so an env whose episodes never end
cannot hold an evaluation forever.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

DEFAULT_MAX_EPISODE_STEPS = 100_000  # evaluation's cut for an env that declares no limit


class FrameSink(Protocol):
    """Where `play_episode` puts rendered frames: a list, or a video writer streaming them."""

    def append(self, frame: np.ndarray) -> None: ...


class Actor(Protocol):
    """What plays an episode: an agent's evaluation policy."""

    def act(self, observation: Any, state: Any) -> tuple[Any, Any]: ...

    def initial_state(self) -> Any: ...


class Episode(NamedTuple):
    """One played episode: its return (sum of rewards), length and success (if reported).

    A named tuple: NES's workers send one per population member, and it pickles small."""

    total: float
    length: int
    success: bool | None = None
    # with play_episode(observation_moments=True): (count, mean, variance) of its observations
    observations: tuple[int, list[float], list[float]] | None = None


def play_episode(
    actor: Actor,
    env: Any,
    *,
    seed: int | None = None,
    max_steps: int | None = None,
    video_frames: FrameSink | None = None,
    observation_moments: bool = False,
) -> Episode:
    """One episode of `actor` from `env.reset(seed=seed)`, cut after `max_steps` steps.

    `observation_moments=True` (vector observations): the Episode carries the count, mean
    and variance of the observations acted on (NES's observation statistics).

    With `video_frames`, `env.render()` frames are appended to it (the env must have been
    made with render_mode="rgb_array").
    """
    observation, _ = env.reset(seed=seed)
    if video_frames is not None:
        video_frames.append(env.render())
    state = actor.initial_state()
    total, length, done = 0.0, 0, False
    info: dict[str, Any] = {}
    seen: list[np.ndarray] = []
    while not done:
        if observation_moments:
            seen.append(np.asarray(observation, dtype=np.float64).reshape(-1))
        action, state = actor.act(observation, state)
        observation, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        length += 1
        done = bool(terminated or truncated) or (max_steps is not None and length >= max_steps)
        if video_frames is not None:
            video_frames.append(env.render())
    success = info.get("is_success")
    moments = None
    if seen:
        stacked = np.stack(seen)
        moments = (len(seen), stacked.mean(axis=0).tolist(), stacked.var(axis=0).tolist())
    return Episode(total, length, None if success is None else bool(success), moments)


@dataclass(frozen=True)
class EvalStats:
    episodes: int
    mean: float
    std: float
    min: float
    max: float
    mean_length: float
    success_rate: float | None  # None when the env reports no success

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (
            f"{self.episodes} episodes: return mean {self.mean:.4g} std {self.std:.4g} "
            f"min {self.min:.4g} max {self.max:.4g}; length mean {self.mean_length:.1f}"
        )
        if self.success_rate is not None:
            text += f"; success rate {self.success_rate:.3f}"
        return text


def episode_step_cap(env: Any, max_steps: int | None = None) -> int:
    """The most steps an evaluation episode takes: `max_steps` if given, else the env's
    own time limit (its spec's `max_episode_steps`), else `DEFAULT_MAX_EPISODE_STEPS`."""
    if max_steps is not None:
        return max_steps
    limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
    return int(limit) if limit else DEFAULT_MAX_EPISODE_STEPS


def evaluate(
    agent: Actor,
    env: Any,
    episodes: int,
    video_frames: FrameSink | None = None,
    max_steps: int | None = None,
) -> EvalStats:
    """Play `episodes` episodes with `agent.act`, each cut at `episode_step_cap(env,
    max_steps)` steps; `env` is seeded by the caller.

    With `video_frames`, the first episode's `env.render()` frames are appended to it.
    """
    cap = episode_step_cap(env, max_steps)
    played = [
        play_episode(agent, env, max_steps=cap, video_frames=video_frames if index == 0 else None)
        for index in range(episodes)
    ]
    values = np.asarray([episode.total for episode in played], dtype=np.float64)
    successes = [episode.success for episode in played if episode.success is not None]
    return EvalStats(
        episodes=episodes,
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        mean_length=float(np.mean([episode.length for episode in played])),
        success_rate=float(np.mean(successes)) if len(successes) == episodes else None,
    )


class VideoWriter:
    """An H.264 MP4 written frame by frame as `play_episode` renders them (imageio-ffmpeg's
    bundled ffmpeg), so a long episode's video never sits in memory whole. `close` lets
    ffmpeg finish the file; `abort` (Ctrl-C, an error) kills it at once, since finishing
    would first encode every frame it holds."""

    def __init__(self, path: Any, fps: int = 30) -> None:
        self._path, self._fps = str(path), fps
        self._frames: Any = None  # imageio-ffmpeg's writer, started by the first frame

    def append(self, frame: np.ndarray) -> None:
        if self._frames is None:
            import imageio_ffmpeg

            height, width = frame.shape[:2]
            self._frames = imageio_ffmpeg.write_frames(
                self._path, (width, height), fps=self._fps, codec="libx264", macro_block_size=1
            )
            self._frames.send(None)
        self._frames.send(np.ascontiguousarray(frame, dtype=np.uint8))

    def close(self) -> None:
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    def abort(self) -> None:
        if self._frames is not None:
            frames, self._frames = self._frames, None
            with contextlib.suppress(KeyboardInterrupt):  # imageio-ffmpeg then kills ffmpeg
                frames.throw(KeyboardInterrupt)
