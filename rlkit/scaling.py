"""Return-based reward scaling for on-policy learners: a learning signal, never a score.

`RewardScaler` divides each reward by the running standard deviation of the discounted
return, clipped to +-`clip`: the reward half of Stable-Baselines3's `VecNormalize` (RL
Baselines3 Zoo's `normalize: true`), the "reward scaling" of Engstrom et al. 2020
("Implementation matters in deep policy gradients"). The learner applies it to a whole
batch [T, N] of its workers' rewards, in the workers' fixed order, so a Ray run and an
in-process run of a seed scale alike; each env's running return carries across batches
(the workers keep their envs). Logged episode returns are the env's own.

Deviation from VecNormalize: the statistics take the batch's returns first and the
batch is then scaled by them (VecNormalize scales each step by the statistics so far).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class RewardScaler:
    """r / sqrt(Var[discounted return] + eps), clipped; `state_dict` goes in checkpoints."""

    def __init__(self, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.gamma, self.clip, self.epsilon = gamma, clip, epsilon
        self.returns: np.ndarray | None = None  # [N]: each env's running discounted return
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, rewards: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
        """Scaled `rewards` [T, N]; `ends` [T, N] marks each episode's last step."""
        rewards_np = rewards.detach().cpu().double().numpy()
        ends_np = ends.detach().cpu().numpy().astype(bool)
        length, count = rewards_np.shape
        if self.returns is None or self.returns.shape != (count,):  # new or resized workers
            self.returns = np.zeros(count)
        running = self.returns
        seen = np.empty_like(rewards_np)
        for step in range(length):
            running = running * self.gamma + rewards_np[step]
            seen[step] = running
            running = np.where(ends_np[step], 0.0, running)
        self.returns = running
        self._merge(seen.reshape(-1))
        scale = float(np.sqrt(self.var + self.epsilon))
        scaled = np.clip(rewards_np / scale, -self.clip, self.clip)
        return torch.as_tensor(scaled, dtype=rewards.dtype)

    def _merge(self, values: np.ndarray) -> None:
        """Chan et al. 1979's parallel update of the running mean and variance."""
        batch, batch_mean, batch_var = float(len(values)), float(values.mean()), float(values.var())
        total = self.count + batch
        delta = batch_mean - self.mean
        self.mean += delta * batch / total
        self.var = (
            self.var * self.count + batch_var * batch + delta**2 * self.count * batch / total
        ) / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        returns = None if self.returns is None else torch.from_numpy(self.returns.copy())
        return {"returns": returns, "mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The statistics; the running returns start again at 0, as a resumed run's
        workers start fresh episodes (`returns` is kept in the checkpoint for the record)."""
        self.returns = None
        self.mean, self.var, self.count = (
            float(state["mean"]),
            float(state["var"]),
            float(state["count"]),
        )
