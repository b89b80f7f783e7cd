"""DQN on CartPole-v1: wall-clock and env steps to a greedy return of 475, rlkit vs SB3.

    pip install -e ".[bench]"
    .venv/bin/python benchmarks/dqn_cartpole.py [--seeds 0 1 2] [--eval-every 2500]

SB3's DQN runs with RL Baselines3 Zoo's tuned CartPole-v1 hyperparameters (50,000
steps, MLP 256x256, lr 2.3e-3, batch 64, 128 updates every 256 steps, target refresh
every 10 steps, epsilon 1 -> 0.04 over 16%); rlkit with its own defaults for flat
observations (`configs/dqn/cartpole.yaml`: the same values plus Double DQN). Every
`--eval-every` env steps both play 10 greedy episodes on a separate env; the first
evaluation with mean return >= 475 marks the time, counting training wall-clock only
(evaluation time is subtracted). Seeds alternate between the frameworks in one process,
with the same torch thread count, so machine noise hits both alike.
"""

from __future__ import annotations

import argparse

import torch
from cartpole_timing import (
    Reach,
    evaluation_clock,
    greedy_mean,
    machine_line,
    print_table,
    report_seed,
    rlkit_reach,
)

STEPS = 50_000  # RL Zoo's n_timesteps for CartPole-v1


def rlkit_run(seed: int, eval_every: int) -> Reach:
    """(seconds to target, steps to target, total training seconds); inf when not reached."""
    return rlkit_reach(
        "dqn", seed, eval_every, env="CartPole-v1", steps=STEPS, threads=torch.get_num_threads()
    )


def sb3_run(seed: int, eval_every: int) -> Reach:
    import gymnasium as gym
    from stable_baselines3 import DQN

    env = gym.make("CartPole-v1")
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1_000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        verbose=0,
        device="cpu",
    )
    callback = evaluation_clock(greedy_mean("CartPole-v1", seed), eval_every)
    model.learn(total_timesteps=STEPS, callback=callback)
    return callback.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results: dict[str, list[Reach]] = {"rlkit": [], "SB3": []}
    for index, seed in enumerate(args.seeds):
        order = ("rlkit", "SB3") if index % 2 == 0 else ("SB3", "rlkit")
        for name in order:
            run = rlkit_run if name == "rlkit" else sb3_run
            results[name].append(run(seed, args.eval_every))
            report_seed(seed, name, results[name][-1], STEPS)
    print()
    print(machine_line(args.threads, args.eval_every))
    print_table(results)


if __name__ == "__main__":
    main()
