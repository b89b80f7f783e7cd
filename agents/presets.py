"""Published values per task for the shipped agents (`rlkit.presets`), each cited.

A run takes an agent's first preset whose env patterns match its env id, else the first
whose spaces family accepts its spaces, else none (the agent's Config defaults: its
paper's or library's). The shipped `configs/<agent>/*.yaml` files hold the same values
with comments (`tests/test_shipped_configs.py` checks that `rlkit run AGENT --env ENV`
resolves to what `--config` of the file resolves to).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from rlkit.presets import Preset


def vector_observations(observation: gym.Space[Any], action: gym.Space[Any]) -> bool:
    """Every observation but Atari frame stacks (uint8 CHW images)."""
    from rlkit.networks import is_image_space

    return not is_image_space(observation)


# --- trpo: RL Baselines3 Zoo, hyperparams/trpo.yml (sb3-contrib TRPO); the rest of each
# run is sb3-contrib's defaults (trpo's Config). The Zoo's n_envs 2 are 2 envs of one
# rollout worker acting in one batch, as its vector env does. The Zoo's `normalize: true`
# is VecNormalize (observations and rewards): normalize_observations and
# normalize_rewards. gSDE (use_sde, Pendulum and MountainCarContinuous) is not in rlkit.

ZOO_TRPO = "RL Baselines3 Zoo, hyperparams/trpo.yml"
_VEC_NORMALIZE: dict[str, Any] = {"normalize_observations": True, "normalize_rewards": True}
# The Zoo's MuJoCo and PyBullet values (`&pybullet-defaults`, `&mujoco-defaults`).
_ZOO_TRPO_MUJOCO: dict[str, Any] = {
    **_VEC_NORMALIZE,
    "steps_per_worker": 1024,  # n_steps
    "value_batch_size": 128,  # batch_size
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "cg_iterations": 25,  # cg_max_steps
    "cg_damping": 0.1,
    "value_epochs": 20,  # n_critic_updates
    "value_learning_rate": 1e-3,
}
# One worker gains nothing from a process of its own (the learner waits for it), and a
# 64x64 MLP runs fastest on one torch thread, which also does not fight a busy machine's
# other processes for the cores (benchmarks/mujoco_trpo.py measures both).
_ONE_WORKER = {"workers": 1, "pool": "inprocess", "threads": 1}


def _zoo_two_envs(
    name: str, entry: str, envs: tuple[str, ...], steps: int, hparams: dict[str, Any]
) -> Preset:
    """A trpo.yml entry with the Zoo's 2 envs: 2 envs of one in-process worker."""
    return Preset(
        f"trpo/{name}",
        f"{ZOO_TRPO}, {entry}",
        envs=envs,
        steps=steps,
        settings=_ONE_WORKER,
        hparams={"envs_per_worker": 2, **hparams},
    )


TRPO_PRESETS: tuple[Preset, ...] = (
    _zoo_two_envs(
        "cartpole",
        "CartPole-v1 (tuned)",
        ("CartPole-v*",),
        100_000,
        {
            "steps_per_worker": 512,
            "cg_damping": 1e-3,
            "gae_lambda": 0.98,
            "value_epochs": 20,
            "value_batch_size": 512,
        },
    ),
    Preset(
        "trpo/pendulum",
        f"{ZOO_TRPO}, Pendulum-v1 (tuned), without its gSDE; its 2 envs as 2 workers",
        envs=("Pendulum-v*",),
        steps=100_000,
        hparams={"steps_per_worker": 1024, "gamma": 0.9, "value_epochs": 15},
    ),
    _zoo_two_envs(
        "acrobot",
        "Acrobot-v1 (tuned)",
        ("Acrobot-v*",),
        100_000,
        {**_VEC_NORMALIZE, "steps_per_worker": 1024},
    ),
    _zoo_two_envs(
        "mountaincar",
        "MountainCar-v0 (tuned)",
        ("MountainCar-v*",),
        100_000,
        {**_VEC_NORMALIZE, "steps_per_worker": 1024, "value_epochs": 20},
    ),
    _zoo_two_envs(
        "lunarlander",
        "LunarLander-v3 (tuned)",
        ("LunarLander-v*",),
        200_000,
        {"steps_per_worker": 512, "cg_damping": 0.01, "gae_lambda": 0.98, "value_epochs": 15},
    ),
    _zoo_two_envs(
        "lunarlander-continuous",
        "LunarLanderContinuous-v3 (tuned)",
        ("LunarLanderContinuous-v*",),
        100_000,
        {**_VEC_NORMALIZE, "steps_per_worker": 1024, "value_epochs": 20},
    ),
    _zoo_two_envs(
        "halfcheetah",
        "HalfCheetah-v4 (tuned: the MuJoCo values, target_kl 0.04)",
        ("HalfCheetah-v*",),
        1_000_000,
        {**_ZOO_TRPO_MUJOCO, "max_kl": 0.04},
    ),
    _zoo_two_envs(
        "swimmer",
        "Swimmer-v4 (tuned: the MuJoCo values, gamma 0.9999)",
        ("Swimmer-v*",),
        1_000_000,
        {**_ZOO_TRPO_MUJOCO, "gamma": 0.9999},
    ),
    _zoo_two_envs(
        "humanoid",
        "Humanoid-v4 (the MuJoCo values, 2M steps)",
        ("Humanoid-v*",),
        2_000_000,
        _ZOO_TRPO_MUJOCO,
    ),
    _zoo_two_envs(
        "mujoco",
        "Hopper-v4, Walker2d-v4, Ant-v4 (tuned), BipedalWalker-v3",
        ("Hopper-v*", "Walker2d-v*", "Ant-v*", "BipedalWalker-v*"),
        1_000_000,
        _ZOO_TRPO_MUJOCO,
    ),
    Preset(
        "trpo/minigrid",
        "RL Baselines3 Zoo, hyperparams/ppo.yml, MiniGrid (8 x 128 = 1024 steps per update, "
        "gamma 0.99, GAE 0.95); sb3-contrib's TRPO defaults otherwise",
        envs=("MiniGrid-*",),
        steps=150_000,
        settings={"pool": "inprocess", "threads": 1},
        hparams={"steps_per_worker": 512, "encoder": {"scale": {"image": 1.0}}},
    ),
)


# --- dqn -----------------------------------------------------------------------------
# RL Baselines3 Zoo's tuned DQN CartPole-v1 values with rlkit's changes (each named in
# configs/dqn/cartpole.yaml): the family preset for every vector observation.
DQN_FLAT_OBSERVATION_STEPS = 50_000
DQN_FLAT_OBSERVATION: dict[str, Any] = {
    "mlp_hidden": [128, 128],
    "buffer_size": 100_000,
    "batch_size": 64,
    "learning_rate": 1e-3,
    "adam_epsilon": 1e-8,
    "learning_starts": 1_000,
    "train_frequency": 256,
    "gradient_steps": 64,
    "n_step": 3,
    "target_update_period": 10,
    "epsilon": {"kind": "linear", "start": 1.0, "end": 0.04, "fraction": 0.16},
    "epsilon_steps": None,
    "double_dqn": True,
    "eval_epsilon": 0.0,  # evaluate the greedy policy, as RL Zoo does
}
DQN_PRESETS: tuple[Preset, ...] = (
    Preset(
        "dqn/minatar",
        "Young & Tian 2019 (MinAtar), the paper's DQN as examples/dqn.py runs it: one "
        "128-unit layer after the conv, replay 100k, centered RMSProp 2.5e-4 without "
        "momentum, one update per frame, 5M frames",
        envs=("MinAtar/*",),
        steps=5_000_000,
        hparams={
            "mlp_hidden": [128],
            "buffer_size": 100_000,
            "batch_size": 32,
            "gamma": 0.99,
            "optimizer": "rmsprop",
            "learning_rate": 0.00025,
            "rmsprop_momentum": 0.0,  # examples/dqn.py never passes its GRAD_MOMENTUM
            "learning_starts": 5_000,
            "train_frequency": 1,
            "gradient_steps": 1,
            "target_update_period": 1_000,
            "epsilon": {"kind": "linear", "start": 1.0, "end": 0.1, "fraction": 1.0},
            "epsilon_steps": 100_000,
            "eval_epsilon": 0.0,
            "max_grad_norm": None,
            "n_step": 1,
            "double_dqn": False,
        },
    ),
    Preset(
        "dqn/minigrid-empty-5x5",
        "configs/dqn/minigrid.yaml: tuned here on MiniGrid-Empty-5x5-v0 (seed 0), MinAtar's "
        "128-unit head, Mnih et al. 2015's batch and update frequency",
        envs=("MiniGrid-Empty-5x5-v*",),
        steps=30_000,
        hparams={
            "encoder": {"scale": {"image": 1.0}},
            "mlp_hidden": [128],
            "buffer_size": 50_000,
            "batch_size": 32,
            "learning_rate": 0.0005,
            "adam_epsilon": 1e-8,
            "learning_starts": 1_000,
            "train_frequency": 4,
            "gradient_steps": 1,
            "target_update_period": 500,
            "n_step": 3,
            "double_dqn": True,
            "gamma": 0.9,
            "epsilon": {"kind": "linear", "start": 1.0, "end": 0.05, "fraction": 0.3},
            "epsilon_steps": None,
            "eval_epsilon": 0.0,
        },
    ),
    Preset(
        "dqn/vector",
        "RL Baselines3 Zoo, hyperparams/dqn.yml, CartPole-v1 (tuned), with rlkit's changes "
        "(configs/dqn/cartpole.yaml): every vector observation",
        family=vector_observations,
        steps=DQN_FLAT_OBSERVATION_STEPS,
        hparams=DQN_FLAT_OBSERVATION,
    ),
)

# --- a3c -----------------------------------------------------------------------------
# Tuned here on CartPole-v1 (configs/a3c/cartpole.yaml), with SB3's A2C MlpPolicy
# (separate 64x64 tanh MLPs).
A3C_FLAT_OBSERVATION_STEPS = 100_000
A3C_FLAT_OBSERVATION: dict[str, Any] = {
    "n_steps": 10,
    "envs_per_worker": 4,
    "activation": "tanh",
    "optimizer": "adam",
    "learning_rate": 3e-3,
    "optimizer_eps": 1e-8,
    "entropy_coef": 0.0,
    "max_grad_norm": 1.0,
    "apply_order": "fixed",
    "shared_torso": False,
}
ZOO_A2C = "RL Baselines3 Zoo, hyperparams/a2c.yml"
# Stable-Baselines3's A2C defaults: RMSProp (alpha 0.99, eps 1e-5) at a constant 7e-4,
# 5 steps per update, max grad norm 0.5, value weight 0.5, MlpPolicy's separate 64x64
# tanh networks; gamma 0.99 and n-step returns (GAE lambda 1) as a3c's own.
_SB3_A2C: dict[str, Any] = {
    "optimizer": "rmsprop",
    "rmsprop_alpha": 0.99,
    "optimizer_eps": 1e-5,
    "learning_rate": 7e-4,
    "anneal_lr": False,
    "n_steps": 5,
    "max_grad_norm": 0.5,
    "value_coef": 0.5,
    "activation": "tanh",
    "shared_torso": False,
    "apply_order": "fixed",
}
A3C_PRESETS: tuple[Preset, ...] = (
    Preset(
        "a3c/cartpole",
        "configs/a3c/cartpole.yaml: tuned here on CartPole-v1; entropy 0 from RL Baselines3 "
        "Zoo's A2C CartPole-v1",
        envs=("CartPole-v*",),
        steps=A3C_FLAT_OBSERVATION_STEPS,
        settings={"threads": 1},
        hparams=A3C_FLAT_OBSERVATION,
    ),
    Preset(
        "a3c/acrobot",
        f"{ZOO_A2C}, Acrobot-v1 (16 envs: 2 workers x 8, observation normalisation, entropy "
        "0, 500k steps) on SB3's A2C defaults (RMSProp 7e-4, 5 steps, separate 64x64 tanh "
        "MLPs); the Zoo also normalises rewards, which a3c does not",
        envs=("Acrobot-v*",),
        steps=500_000,
        hparams={
            **_SB3_A2C,
            "envs_per_worker": 8,
            "normalize_observations": True,
            "entropy_coef": 0.0,
        },
    ),
    Preset(
        "a3c/lunarlander",
        f"{ZOO_A2C}, LunarLander-v2 (8 envs: 2 workers x 4, gamma 0.995, 5 steps, learning "
        "rate 0.00083 annealed to 0, entropy 1e-5, 200k steps) on SB3's A2C defaults",
        envs=("LunarLander-v*",),
        steps=200_000,
        hparams={
            **_SB3_A2C,
            "envs_per_worker": 4,
            "gamma": 0.995,
            "learning_rate": 0.00083,
            "anneal_lr": True,
            "entropy_coef": 1e-5,
        },
    ),
)
# Any other vector task gets a3c's own defaults (Mnih et al. 2016's: entropy 0.01,
# RMSProp 7e-4 annealed, 5 steps), never another task's tuned values.

# --- nes -----------------------------------------------------------------------------
NES_PRESETS: tuple[Preset, ...] = (
    Preset(
        "nes/cartpole",
        "configs/nes/cartpole.yaml: Salimans et al. 2017's ES (mirrored sampling, rank "
        "shaping, weight decay 0.005) with sigma 0.1 and Adam 0.05 chosen here, 32 units",
        envs=("CartPole-v*",),
        steps=300_000,
        hparams={
            "variant": "es",
            "population": 48,
            "sigma": 0.1,
            "learning_rate": 0.05,
            "weight_decay": 0.005,
            "eta_mu": 1.0,
            "hidden": [32],
        },
    ),
    Preset(
        "nes/mujoco",
        "configs/nes/halfcheetah.yaml: Salimans et al. 2017's MuJoCo values (sigma 0.02, "
        "Adam 0.01, weight decay 0.005, 64x64 tanh, observation statistics from 1% of the "
        "episodes) with a population of 48 for a 2-core machine, 5M steps",
        envs=("HalfCheetah-v*", "Hopper-v*", "Walker2d-v*", "Ant-v*", "Swimmer-v*"),
        steps=5_000_000,
        hparams={
            "variant": "es",
            "population": 48,
            "sigma": 0.02,
            "learning_rate": 0.01,
            "weight_decay": 0.005,
            "hidden": [64, 64],
            "activation": "tanh",
            "normalize_observations": True,
            "observation_fraction": 0.01,
        },
    ),
    Preset(
        "nes/pendulum",
        "configs/nes/pendulum.yaml: Wierstra et al. 2014's SNES, population 17 (their default "
        "for 82 parameters), 16 units, common starts, selection every 10 generations",
        envs=("Pendulum-v*",),
        steps=1_600_000,
        hparams={
            "variant": "snes",
            "population": 17,
            "sigma": 0.25,
            "eta_mu": 1.0,
            "common_start": True,
            "select_every": 10,
            "select_episodes": 20,
            "hidden": [16],
        },
    ),
)

# --- qlearning -----------------------------------------------------------------------
QLEARNING_PRESETS: tuple[Preset, ...] = (
    Preset(
        "qlearning/gridworld",
        "configs/qlearning/gridworld.yaml: 56 cells x 4 actions learn in 50,000 steps",
        envs=("rlkit/GridWorld-v*",),
        steps=50_000,
    ),
)

# --- rpg -----------------------------------------------------------------------------
_RPG_COMMON: dict[str, Any] = {
    "entropy_coef": 0.01,  # Mnih et al. 2016's entropy weight
    "value_coef": 0.5,
    "normalize_advantages": True,
    "max_grad_norm": 1.0,
    "hidden": [64],
    "lstm_size": 64,
}
RPG_PRESETS: tuple[Preset, ...] = (
    Preset(
        "rpg/cartpole-novel",
        "configs/rpg/cartpole_novel.yaml: gamma 0.98 from RL Baselines3 Zoo's ppo_lstm.yml "
        "CartPoleNoVel-v1; batch, learning rate and normalisation tuned here",
        envs=("rlkit/CartPoleNoVel-v*",),
        steps=100_000,
        hparams={
            **_RPG_COMMON,
            "steps_per_worker": 256,
            "gamma": 0.98,
            "learning_rate": 0.002,
            "normalize_observations": True,
            "forget_bias": 1.0,
            "shared_torso": False,
        },
    ),
    Preset(
        "rpg/tmaze",
        "configs/rpg/tmaze.yaml: Bakker 2002's T-maze, small batches and forget-gate bias 3 "
        "tuned here",
        envs=("rlkit/TMaze-v*",),
        steps=80_000,
        hparams={
            **_RPG_COMMON,
            "steps_per_worker": 32,
            "gamma": 0.99,
            "learning_rate": 0.003,
            "forget_bias": 3.0,
            "shared_torso": True,
        },
    ),
)
