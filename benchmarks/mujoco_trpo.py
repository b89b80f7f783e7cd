"""TRPO on MuJoCo locomotion: rlkit's default command beside sb3-contrib TRPO, one core each.

    pip install -e ".[bench,mujoco]"
    .venv/bin/python benchmarks/mujoco_trpo.py --env Hopper-v5 --seeds 0-2 --out bench-out
    .venv/bin/python benchmarks/mujoco_trpo.py --env Hopper-v5 --seeds 0 --steps 20000  # smoke
    .venv/bin/python benchmarks/mujoco_trpo.py --env Hopper-v5 --rlkit-only  # no peer

Two processes start together and each runs its seeds one after another, so each has one
of the machine's cores and whatever load hits one hits the other:

- rlkit: `rlkit run trpo --env ENV --seeds S --set pool=inprocess` (the default command:
  the preset chosen by env id, `agents/presets.py`; `pool=inprocess` only keeps the
  group's seeds one after another, which trains what the Ray group trains), final
  greedy return over 10 episodes per seed (`--final-episodes 10`), evaluated on the
  frozen observation statistics.
- sb3-contrib TRPO with RL Baselines3 Zoo's values for the task (hyperparams/trpo.yml,
  the MuJoCo block: n_envs 2, n_steps 1024, batch_size 128, gamma 0.99, gae_lambda 0.95,
  cg_max_steps 25, cg_damping 0.1, n_critic_updates 20, learning_rate 1e-3, normalize
  true; HalfCheetah target_kl 0.04), VecNormalize with the agent's gamma as the Zoo sets
  it, one torch thread; final greedy return over 10 episodes with the statistics frozen.
  Every `--eval-every` steps it plays 10 greedy episodes for its curve.

Prints one row per framework and seed (final greedy return, wall-clock of training),
the mean over seeds, and the wall-clock ratio rlkit / peer; writes `peer.json` (the
peer's rows and curves) and the rlkit group dir under `--out`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ZOO_MUJOCO: dict[str, Any] = {
    "n_steps": 1024,
    "batch_size": 128,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "cg_max_steps": 25,
    "cg_damping": 0.1,
    "n_critic_updates": 20,
    "learning_rate": 1e-3,
}
ZOO_TARGET_KL = {"HalfCheetah": 0.04}


def seed_list(text: str) -> list[int]:
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(part) for part in text.split(",")]


def greedy_return(model: Any, vec_normalize: Any, env_id: str, seed: int, episodes: int) -> float:
    """Mean return of `episodes` deterministic episodes, observations normalised by the
    training statistics, frozen."""
    import gymnasium as gym
    import numpy as np

    env = gym.make(env_id)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=10_000 + 100 * seed + episode)
        done, total = False, 0.0
        while not done:
            normalised = vec_normalize.normalize_obs(observation[None])
            action, _ = model.predict(normalised, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action[0])
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def peer_curve_callback() -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class Curve(BaseCallback):  # type: ignore[misc]
        """10 greedy episodes every `every` steps; their time is kept apart."""

        def __init__(self, env_id: str, seed: int, every: int) -> None:
            super().__init__()
            self.env_id, self.seed, self.every = env_id, seed, every
            self.points: list[tuple[int, float]] = []
            self.seconds = 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps % self.every < 2:  # 2 envs: one step of the two
                began = time.perf_counter()
                score = greedy_return(self.model, self.model.get_env(), self.env_id, self.seed, 10)
                self.points.append((self.num_timesteps, score))
                self.seconds += time.perf_counter() - began
            return True

    return Curve


def run_peer(env_id: str, seeds: list[int], steps: int, eval_every: int, out: Path) -> None:
    """sb3-contrib TRPO with the Zoo's values, seeds one after another (one process)."""
    import torch
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    Curve = peer_curve_callback()
    rows = []
    for seed in seeds:
        values = dict(ZOO_MUJOCO)
        task = env_id.split("-")[0]
        if task in ZOO_TARGET_KL:
            values["target_kl"] = ZOO_TARGET_KL[task]
        env = VecNormalize(make_vec_env(env_id, n_envs=2, seed=seed), gamma=values["gamma"])
        model = TRPO("MlpPolicy", env, seed=seed, device="cpu", **values)
        curve = Curve(env_id, seed, eval_every)
        began = time.perf_counter()
        model.learn(steps, callback=curve)
        seconds = time.perf_counter() - began - curve.seconds
        final = greedy_return(model, env, env_id, seed, 10)
        rows.append({"seed": seed, "final": final, "seconds": seconds, "curve": curve.points})
        print(f"peer seed {seed}: final {final:.1f}, {seconds:.0f} s", flush=True)
        (out / "peer.json").write_text(json.dumps(rows, indent=1))


def rlkit_rows(group: Path) -> list[dict[str, Any]]:
    summary = json.loads((group / "summary.json").read_text())
    return [
        {"seed": entry["seed"], "final": entry["return"], "seconds": entry["seconds"]}
        for entry in summary["seeds"]
    ]


def plot(group: Path, peer_file: Path | None, output: Path, title: str) -> None:
    """Greedy return (10 episodes) against env steps: each framework's mean over its seeds,
    shaded from the lowest to the highest seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    curves: dict[str, list[list[tuple[int, float]]]] = {"rlkit (default command)": []}
    for seed_dir in sorted(group.glob("seed-*")):
        rows = [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines()]
        curves["rlkit (default command)"].append(
            [(row["step"], row["eval/return"]) for row in rows if "eval/return" in row]
        )
    if peer_file is not None and peer_file.is_file():
        peer = json.loads(peer_file.read_text())
        curves["sb3-contrib TRPO, RL Zoo values"] = [row["curve"] for row in peer]
    figure, axes = plt.subplots(figsize=(7, 4))
    for label, runs in curves.items():
        length = min(len(run) for run in runs)
        steps = np.array([step for step, _ in runs[0][:length]])
        values = np.array([[value for _, value in run[:length]] for run in runs])
        axes.plot(steps, values.mean(axis=0), label=f"{label}, mean of {len(runs)} seeds")
        axes.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
    axes.set_xlabel("env steps")
    axes.set_ylabel("greedy return (10 episodes)")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    print(f"wrote {output}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--eval-every", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--rlkit-only", action="store_true")
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plot", type=Path, help="only plot an earlier --out's curves here")
    args = parser.parse_args()
    seeds = seed_list(args.seeds)
    name = f"trpo-{args.env}-{args.seeds}"
    if args.plot:
        plot(args.out / name, args.out / "peer.json", args.plot, f"TRPO on {args.env}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.peer:
        run_peer(args.env, seeds, args.steps, args.eval_every, args.out)
        return
    command = [
        str(Path(sys.executable).with_name("rlkit")), "run", "trpo", "--env", args.env,
        "--seeds", args.seeds, "--steps", str(args.steps), "--final-episodes", "10",
        "--set", "pool=inprocess", "--wandb", "disabled",
        "--out-dir", str(args.out), "--name", name,
    ]  # fmt: skip
    print("rlkit:", " ".join(command[1:]), flush=True)
    rlkit = subprocess.Popen(command)
    peer = None
    if not args.rlkit_only:
        peer_command = [sys.executable, __file__, "--peer", *sys.argv[1:]]
        peer = subprocess.Popen(peer_command)
    rlkit.wait()
    if peer is not None:
        peer.wait()
    ours = rlkit_rows(args.out / name)
    print(f"\n{args.env}, {args.steps} steps, seeds {args.seeds}")
    print("framework  seed  final greedy return  training seconds")
    for row in ours:
        print(f"rlkit      {row['seed']:>4}  {row['final']:>19.1f}  {row['seconds']:>16.0f}")
    theirs = [] if peer is None else json.loads((args.out / "peer.json").read_text())
    for row in theirs:
        print(f"sb3        {row['seed']:>4}  {row['final']:>19.1f}  {row['seconds']:>16.0f}")
    mean = statistics.mean(row["final"] for row in ours)
    seconds = statistics.mean(row["seconds"] for row in ours)
    print(f"rlkit mean final {mean:.1f}, mean seconds {seconds:.0f}")
    if theirs:
        peer_mean = statistics.mean(row["final"] for row in theirs)
        ratio = sum(r["seconds"] for r in ours) / sum(r["seconds"] for r in theirs)
        print(f"sb3 mean final {peer_mean:.1f}; wall-clock ratio rlkit / sb3 {ratio:.2f}")


if __name__ == "__main__":
    main()
