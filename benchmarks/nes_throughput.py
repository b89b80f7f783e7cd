"""NES population evaluation on Ray: evaluations per second with 1 and 2 workers, and the
bytes a generation moves between learner and workers against the parameter count.

    .venv/bin/python benchmarks/nes_throughput.py [--generations 6] [--population 48]

Throughput: Pendulum-v1 (every episode is 200 steps, so every evaluation costs the same),
the default 64x64 policy, mirrored ES tasks; one warm-up generation per pool, then
`--generations` timed with `rlkit.agents.nes.evaluate_tasks`, the learner's own code
path. Both pools run in one process on one embedded Ray, one after the other; the Ray
start-up is printed apart. Traffic: the pickled sizes `evaluate_tasks` counts, split into
the search distribution (sent once per worker per generation) and the task chunks and
returned results (per evaluation), for policies from about 100 to about 1.1M parameters,
next to what sending every perturbed parameter vector would cost (population x
parameters x 4 bytes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from datetime import date

import numpy as np
import torch

from rlkit.agents.nes import NESConfig, NESWorker, evaluate_tasks, noise_table
from rlkit.atari import AtariSettings
from rlkit.environments import make_env
from rlkit.parallel import init_ray, shutdown_ray
from rlkit.policies import ActorCritic
from rlkit.pool import make_pool


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def parameter_count(env_id: str, hidden: list[int]) -> int:
    env = make_env(env_id, seed=0)
    policy = ActorCritic(env.observation_space, env.action_space, hidden=hidden)
    return sum(param.numel() for param in policy.policy_parameters())


def tasks_for(generation: int, population: int, size: int, table: int) -> list[tuple]:
    rng = np.random.default_rng(generation)
    offsets = rng.integers(0, table - size, size=population // 2)
    return [(int(o), s, 1000 * generation + i) for i, o in enumerate(offsets) for s in (1.0, -1.0)]


def pool_for(workers: int, env_id: str, config: NESConfig, noise: np.ndarray):  # type: ignore[no-untyped-def]
    kwargs = [
        {
            "env_id": env_id,
            "env_kwargs": {},
            "atari": AtariSettings(),
            "config": config,
            "seed": index,
            "threads": 1,
        }
        for index in range(workers)
    ]
    return make_pool(NESWorker, kwargs, backend="ray", shared={"noise": noise})


def throughput(workers: int, generations: int, population: int) -> tuple[float, float]:
    """(evaluations per second, env steps per second) of `generations` timed generations."""
    config = NESConfig(hidden=[64, 64], noise_table_size=2_000_000)
    noise = noise_table(0, config.noise_table_size)
    size = parameter_count("Pendulum-v1", config.hidden)
    centre = np.zeros(size, dtype=np.float32)
    with pool_for(workers, "Pendulum-v1", config, noise) as pool:
        evaluate_tasks(pool, (centre, 0.02), 0, tasks_for(0, population, size, len(noise)), 500)
        started = time.perf_counter()
        steps = 0
        for generation in range(1, generations + 1):
            tasks = tasks_for(generation, population, size, len(noise))
            results, *_ = evaluate_tasks(pool, (centre, 0.02), generation, tasks, 500)
            steps += sum(length for _, length in results)
        seconds = time.perf_counter() - started
    return generations * population / seconds, steps / seconds


def traffic(hidden: list[int], population: int, workers: int) -> tuple[int, int, int, int]:
    """(parameters, bytes of the search distribution sent to the workers, bytes of tasks
    and results, bytes if perturbed vectors were sent) for one generation."""
    import pickle

    size = parameter_count("CartPole-v1", hidden)
    config = NESConfig(hidden=hidden, noise_table_size=max(2 * size, 100_000))
    noise = noise_table(0, config.noise_table_size)
    centre = np.zeros(size, dtype=np.float32)
    search = (centre, 0.02)
    with pool_for(workers, "CartPole-v1", config, noise) as pool:
        tasks = tasks_for(0, population, size, len(noise))
        _, sent, received, _ = evaluate_tasks(pool, search, 0, tasks, 50)
    broadcast = len(pickle.dumps(search, protocol=pickle.HIGHEST_PROTOCOL)) * workers
    return size, broadcast, sent + received - broadcast, population * size * 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--population", type=int, default=48)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"date {date.today()}; commit {commit()}"
    )
    startup = init_ray(None)
    print(f"Ray start-up: {startup:.2f} s")
    rates = {}
    for workers in (1, 2, 1, 2):  # interleaved twice: noise hits both alike
        evals, steps = throughput(workers, args.generations, args.population)
        rates.setdefault(workers, []).append(evals)
        print(f"{workers} worker(s): {evals:.1f} evaluations/s ({steps:.0f} env steps/s)")
    one, two = (statistics.median(rates[n]) for n in (1, 2))
    print(f"median: 1 worker {one:.1f}, 2 workers {two:.1f} evaluations/s: {two / one:.2f}x")
    print("traffic per generation (population 48, 2 workers):")
    print(
        f"{'parameters':>12} {'parameters to workers':>22} {'tasks + results':>16} "
        f"{'per evaluation':>15} {'perturbed vectors':>18}"
    )
    for hidden in ([16], [64, 64], [256, 256], [1024, 1024]):
        size, broadcast, tasks, naive = traffic(hidden, 48, 2)
        print(f"{size:>12,} {broadcast:>22,} {tasks:>16,} {tasks / 48:>15.1f} {naive:>18,}")
    shutdown_ray()


if __name__ == "__main__":
    main()
