"""Policy gradients on CartPole: wall-clock and env steps to a greedy return of 475, rlkit vs SB3.

    pip install -e ".[bench]"
    .venv/bin/python benchmarks/pg_cartpole.py [--agents trpo a3c rpg] [--seeds 0 1 2]
        [--eval-every 2500]
    .venv/bin/python benchmarks/pg_cartpole.py --seeds 0 --steps 6000   # smoke test only

Each of rlkit's policy-gradient agents runs beside its closest Stable-Baselines3 peer,
that peer with RL Baselines3 Zoo's tuned hyperparameters (github.com/DLR-RM/
rl-baselines3-zoo: hyperparams/trpo.yml at commit eb5d9c7, a2c.yml at c6c209e,
ppo_lstm.yml at c94924e; values not listed are the library's defaults):

- rlkit `trpo` on CartPole-v1 (`configs/trpo/cartpole.yaml`, the Zoo's values, its 2 envs
  in one worker)
  vs sb3_contrib.TRPO, hyperparams/trpo.yml CartPole-v1: n_envs 2, n_timesteps 1e5,
  MlpPolicy, n_steps 512, batch_size 512, cg_damping 1e-3, gae_lambda 0.98, gamma 0.99,
  learning_rate 1e-3, n_critic_updates 20.
- rlkit `a3c` on CartPole-v1 (`configs/a3c/cartpole.yaml`: 2 Ray workers, 20-step
  segments, Adam 3e-3 annealed, 100k steps) vs stable_baselines3.A2C,
  hyperparams/a2c.yml CartPole-v1: n_envs 8, n_timesteps 5e5, MlpPolicy, ent_coef 0.0
  (A2C defaults otherwise: n_steps 5, RMSProp lr 7e-4, gamma 0.99, gae_lambda 1.0).
- rlkit `rpg` on rlkit/CartPoleNoVel-v0 (`configs/rpg/cartpole_novel.yaml`, 2 workers)
  vs sb3_contrib.RecurrentPPO, hyperparams/ppo_lstm.yml CartPoleNoVel-v1: normalize true
  (VecNormalize of observations and rewards, its gamma set to the agent's, as the Zoo
  does), n_envs 8, n_timesteps 1e5, MlpLstmPolicy, n_steps 32, batch_size 256,
  gae_lambda 0.8, gamma 0.98, n_epochs 20, ent_coef 0.0, learning_rate lin_0.001,
  clip_range lin_0.2 (both decayed linearly to 0), policy_kwargs ortho_init False,
  ReLU, lstm_hidden_size 64, enable_critic_lstm True, net_arch pi [64] vf [64]. It runs
  on rlkit's env (cart position and pole angle only) rather than the Zoo's
  CartPoleNoVel-v1 (which zeroes the two velocities instead of dropping them).

Each framework trains for its own budget (rlkit's config, the Zoo's n_timesteps; `--steps`
sets both, for smoke tests). Every `--eval-every` env steps both play 10 greedy episodes
on a separate env (the recurrent peer carries its LSTM state and episode starts through
them, with the training env's observation statistics frozen); the first evaluation with
mean return >= 475 marks the time, counting training wall-clock only (evaluation time is
subtracted). Steps are counted where the evaluation runs: after an rlkit batch, or at the
peer's first vector-env step past the multiple of `--eval-every`. Seeds alternate between
the frameworks in one process, with the same torch thread count, so machine noise hits
both alike. The embedded Ray that rlkit's workers run on starts once, before the first
run, and is timed apart; starting each run's worker actors counts in rlkit's time.
With `--pool inprocess` rlkit's workers live in the learner's process instead and step
one after another, as the peers step their vector envs; no Ray starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from cartpole_timing import (
    Reach,
    evaluation_clock,
    greedy_mean,
    machine_line,
    print_table,
    ratio,
    report_seed,
    rlkit_reach,
)

from rlkit.config import load_yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """One rlkit agent and its peer: how to build the peer, and both budgets."""

    agent: str
    config: Path
    env: str
    peer: str
    peer_steps: int  # the Zoo's n_timesteps
    build_peer: Callable[[int], tuple[Any, Callable[[Any], float]]]

    @property
    def rlkit_steps(self) -> int:
        return int(load_yaml(self.config)["steps"])


def linear(initial: float) -> Callable[[float], float]:
    """The Zoo's `lin_<value>`: `initial` times SB3's progress remaining (1 -> 0)."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def sb3_trpo(seed: int) -> tuple[Any, Callable[[Any], float]]:
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env

    model = TRPO(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=2, seed=seed),
        n_steps=512,
        batch_size=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        learning_rate=1e-3,
        n_critic_updates=20,
        seed=seed,
        verbose=0,
        device="cpu",
    )
    return model, greedy_mean("CartPole-v1", seed)


def sb3_a2c(seed: int) -> tuple[Any, Callable[[Any], float]]:
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    model = A2C(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=8, seed=seed),
        ent_coef=0.0,
        seed=seed,
        verbose=0,
        device="cpu",
    )
    return model, greedy_mean("CartPole-v1", seed)


def sb3_recurrent_ppo(seed: int) -> tuple[Any, Callable[[Any], float]]:
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from rlkit.registry import register_env_plugins

    register_env_plugins()  # puts rlkit/CartPoleNoVel-v0 into gymnasium's registry
    env = VecNormalize(make_vec_env("rlkit/CartPoleNoVel-v0", n_envs=8, seed=seed), gamma=0.98)
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        policy_kwargs={
            "ortho_init": False,
            "activation_fn": torch.nn.ReLU,
            "lstm_hidden_size": 64,
            "enable_critic_lstm": True,
            "net_arch": {"pi": [64], "vf": [64]},
        },
        seed=seed,
        verbose=0,
        device="cpu",
    )
    return model, greedy_mean("rlkit/CartPoleNoVel-v0", seed, normalized=True)


PAIRINGS = {
    "trpo": Pairing(
        agent="trpo",
        config=CONFIGS / "trpo/cartpole.yaml",
        env="CartPole-v1",
        peer="sb3-contrib TRPO",
        peer_steps=100_000,
        build_peer=sb3_trpo,
    ),
    "a3c": Pairing(
        agent="a3c",
        config=CONFIGS / "a3c/cartpole.yaml",
        env="CartPole-v1",
        peer="SB3 A2C",
        peer_steps=500_000,
        build_peer=sb3_a2c,
    ),
    "rpg": Pairing(
        agent="rpg",
        config=CONFIGS / "rpg/cartpole_novel.yaml",
        env="rlkit/CartPoleNoVel-v0",
        peer="sb3-contrib RecurrentPPO",
        peer_steps=100_000,
        build_peer=sb3_recurrent_ppo,
    ),
}


def rlkit_run(
    pairing: Pairing, seed: int, eval_every: int, steps: int, threads: int, pool: str
) -> Reach:
    return rlkit_reach(
        pairing.agent,
        seed,
        eval_every,
        config=str(pairing.config),
        steps=steps,
        pool=pool,
        threads=threads,
    )


def peer_run(pairing: Pairing, seed: int, eval_every: int, steps: int) -> Reach:
    model, evaluate = pairing.build_peer(seed)
    callback = evaluation_clock(evaluate, eval_every)
    model.learn(total_timesteps=steps, callback=callback)
    return callback.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", choices=list(PAIRINGS), default=list(PAIRINGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps for every run of both frameworks (smoke tests only; default: "
        "rlkit's config and the Zoo's n_timesteps)",
    )
    parser.add_argument(
        "--pool",
        choices=["ray", "inprocess"],
        default="ray",
        help="rlkit's worker pool: Ray actors (default), or the workers in the learner's "
        "process, stepped one after another as the peers step their vector envs",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from rlkit.parallel import init_ray, shutdown_ray

    if args.pool == "ray":
        ray_startup = init_ray(None)  # once; later runs reuse it
        print(f"embedded Ray started in {ray_startup:.1f} s (not counted below)", flush=True)
    tables: dict[str, dict[str, list[Reach]]] = {}
    budgets: dict[str, tuple[int, int]] = {}
    try:
        for agent in args.agents:
            pairing = PAIRINGS[agent]
            own = args.steps or pairing.rlkit_steps
            peer = args.steps or pairing.peer_steps
            budgets[agent] = (own, peer)
            mine, theirs = f"rlkit {agent}", pairing.peer
            results: dict[str, list[Reach]] = {mine: [], theirs: []}
            tables[agent] = results
            for index, seed in enumerate(args.seeds):
                order = (mine, theirs) if index % 2 == 0 else (theirs, mine)
                for name in order:
                    if name == mine:
                        reach = rlkit_run(
                            pairing, seed, args.eval_every, own, args.threads, args.pool
                        )
                    else:
                        reach = peer_run(pairing, seed, args.eval_every, peer)
                    results[name].append(reach)
                    report_seed(seed, name, reach, own if name == mine else peer)
    finally:
        shutdown_ray()

    print()
    print(machine_line(args.threads, args.eval_every))
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("stable-baselines3", "sb3-contrib", "gymnasium", "ray")
    )
    where = "Ray workers" if args.pool == "ray" else "in-process workers"
    print(f"{versions}; rlkit with its configs' {where}; inf: 475 not reached in the budget")
    for agent, results in tables.items():
        pairing = PAIRINGS[agent]
        own, peer = budgets[agent]
        print()
        print(
            f"{agent} on {pairing.env}: rlkit {own} steps "
            f"({pairing.config.relative_to(CONFIGS.parent)}) vs {pairing.peer} {peer} steps "
            f"(RL Zoo), median of {len(args.seeds)} seeds"
        )
        medians = print_table(results)
        mine, theirs = medians.values()
        print(f"env-steps ratio rlkit / {pairing.peer}: {ratio(mine.steps, theirs.steps)}")


if __name__ == "__main__":
    main()
