"""TRPO on Hopper-v5: env steps per second idle and beside one busy process, rlkit vs sb3.

    .venv/bin/python benchmarks/busy_throughput.py [--steps 20480]

For each framework, in turn (never two timed runs at once): a run of `--steps` steps
on an otherwise idle machine, then the same run while one other process spins on a core
(a pure-Python busy loop, started before and stopped after the run). rlkit runs its
default command (`rlkit run trpo --env Hopper-v5`: the trpo/mujoco preset, one worker
in-process, one torch thread); sb3-contrib TRPO runs the Zoo's Hopper values with
VecNormalize and one torch thread. rlkit is timed around its whole process (start-up
included), sb3 around `learn()` only, so rlkit's figure is the conservative one. Prints
steps/s idle, busy, and the ratio busy / idle.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY = "while True: pass"
PEER = """
import sys, time, torch
torch.set_num_threads(1)
from sb3_contrib import TRPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize
steps = int(sys.argv[1])
env = VecNormalize(make_vec_env("Hopper-v5", n_envs=2, seed=0), gamma=0.99)
model = TRPO("MlpPolicy", env, n_steps=1024, batch_size=128, gamma=0.99, gae_lambda=0.95,
             cg_max_steps=25, cg_damping=0.1, n_critic_updates=20, learning_rate=1e-3,
             seed=0, device="cpu")
began = time.perf_counter()
model.learn(steps)
print(steps / (time.perf_counter() - began))
"""


def rlkit_sps(steps: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        rlkit = str(Path(sys.executable).with_name("rlkit"))
        command = [rlkit, "run", "trpo", "--env", "Hopper-v5", "--steps", str(steps),
                   "--wandb", "disabled", "--no-progress", "--out-dir", out]  # fmt: skip
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return steps / (time.perf_counter() - began)


def peer_sps(steps: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PEER, str(steps)], check=True, capture_output=True, text=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_480)
    args = parser.parse_args()
    print("framework  idle sps  busy sps  busy / idle")
    for name, measure in (("rlkit", rlkit_sps), ("sb3", peer_sps)):
        idle = measure(args.steps)
        burner = subprocess.Popen([sys.executable, "-c", BUSY])
        try:
            busy = measure(args.steps)
        finally:
            burner.kill()
            burner.wait()
        print(f"{name:<9}  {idle:>8.0f}  {busy:>8.0f}  {busy / idle:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
