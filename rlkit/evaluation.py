"""Evaluation: run an agent's evaluation policy for whole episodes and summarise returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


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


def evaluate(
    agent: Any, env: Any, episodes: int, video_frames: list[np.ndarray] | None = None
) -> EvalStats:
    """Play `episodes` full episodes with `agent.act`; `env` is seeded by the caller.

    With `video_frames`, the first episode's `env.render()` frames are appended to it
    (the env must have been made with render_mode="rgb_array").
    """
    returns, lengths, successes = [], [], []
    for episode in range(episodes):
        observation, _ = env.reset()
        recording = video_frames is not None and episode == 0
        if recording:
            video_frames.append(env.render())  # type: ignore[union-attr]
        state = agent.initial_state()
        total, length, done = 0.0, 0, False
        info: dict[str, Any] = {}
        while not done:
            action, state = agent.act(observation, state)
            observation, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated
            if recording:
                video_frames.append(env.render())  # type: ignore[union-attr]
        returns.append(total)
        lengths.append(length)
        if "is_success" in info:
            successes.append(bool(info["is_success"]))
    values = np.asarray(returns, dtype=np.float64)
    return EvalStats(
        episodes=episodes,
        mean=float(values.mean()),
        std=float(values.std()),
        min=float(values.min()),
        max=float(values.max()),
        mean_length=float(np.mean(lengths)),
        success_rate=float(np.mean(successes)) if len(successes) == episodes else None,
    )


def write_video(frames: list[np.ndarray], path: Any, fps: int = 30) -> None:
    """Write RGB frames as an H.264 MP4 (imageio with its bundled ffmpeg)."""
    import imageio.v2 as imageio

    writer: Any = imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=1)
    with writer:
        for frame in frames:
            writer.append_data(frame)
