"""Published values per task for the shipped agents (`rlkit.presets`), each cited.

A run takes an agent's first preset whose env patterns match its env id, else the first
whose spaces family accepts its spaces, else none (the agent's Config defaults: its
paper's or library's). The shipped `configs/<agent>/*.yaml` files hold the same values
with comments (`tests/test_shipped_configs.py` checks that `rlkit run AGENT --env ENV`
resolves to what `--config` of the file resolves to).
"""

from __future__ import annotations

from typing import Any

from rlkit.presets import Preset

# --- trpo: RL Baselines3 Zoo, hyperparams/trpo.yml (sb3-contrib TRPO); the rest of each
# run is sb3-contrib's defaults (trpo's Config). The Zoo's n_envs 2 are 2 envs of one
# rollout worker acting in one batch, as its vector env does. The Zoo's `normalize: true`
# is VecNormalize (observations and rewards): normalize_observations and
# normalize_rewards. gSDE (use_sde, Pendulum and MountainCarContinuous) is not in rlkit.

ZOO_TRPO = "RL Baselines3 Zoo, hyperparams/trpo.yml"
_ZOO_TWO_ENVS: dict[str, Any] = {"envs_per_worker": 2}
# The Zoo's MuJoCo and PyBullet values (`&pybullet-defaults`, `&mujoco-defaults`).
_ZOO_TRPO_MUJOCO: dict[str, Any] = {
    **_ZOO_TWO_ENVS,
    "normalize_observations": True,
    "normalize_rewards": True,
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

TRPO_PRESETS: tuple[Preset, ...] = (
    Preset(
        "trpo/cartpole",
        f"{ZOO_TRPO}, CartPole-v1 (tuned)",
        envs=("CartPole-v*",),
        steps=100_000,
        settings=_ONE_WORKER,
        hparams={
            **_ZOO_TWO_ENVS,
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
    Preset(
        "trpo/acrobot",
        f"{ZOO_TRPO}, Acrobot-v1 (tuned)",
        envs=("Acrobot-v*",),
        steps=100_000,
        settings=_ONE_WORKER,
        hparams={
            **_ZOO_TWO_ENVS,
            "normalize_observations": True,
            "normalize_rewards": True,
            "steps_per_worker": 1024,
        },
    ),
    Preset(
        "trpo/mountaincar",
        f"{ZOO_TRPO}, MountainCar-v0 (tuned)",
        envs=("MountainCar-v*",),
        steps=100_000,
        settings=_ONE_WORKER,
        hparams={
            **_ZOO_TWO_ENVS,
            "normalize_observations": True,
            "normalize_rewards": True,
            "steps_per_worker": 1024,
            "value_epochs": 20,
        },
    ),
    Preset(
        "trpo/lunarlander",
        f"{ZOO_TRPO}, LunarLander-v3 (tuned)",
        envs=("LunarLander-v*",),
        steps=200_000,
        settings=_ONE_WORKER,
        hparams={
            **_ZOO_TWO_ENVS,
            "steps_per_worker": 512,
            "cg_damping": 0.01,
            "gae_lambda": 0.98,
            "value_epochs": 15,
        },
    ),
    Preset(
        "trpo/lunarlander-continuous",
        f"{ZOO_TRPO}, LunarLanderContinuous-v3 (tuned)",
        envs=("LunarLanderContinuous-v*",),
        steps=100_000,
        settings=_ONE_WORKER,
        hparams={
            **_ZOO_TWO_ENVS,
            "normalize_observations": True,
            "normalize_rewards": True,
            "steps_per_worker": 1024,
            "value_epochs": 20,
        },
    ),
    Preset(
        "trpo/halfcheetah",
        f"{ZOO_TRPO}, HalfCheetah-v4 (tuned: the MuJoCo values, target_kl 0.04)",
        envs=("HalfCheetah-v*",),
        steps=1_000_000,
        settings=_ONE_WORKER,
        hparams={**_ZOO_TRPO_MUJOCO, "max_kl": 0.04},
    ),
    Preset(
        "trpo/swimmer",
        f"{ZOO_TRPO}, Swimmer-v4 (tuned: the MuJoCo values, gamma 0.9999)",
        envs=("Swimmer-v*",),
        steps=1_000_000,
        settings=_ONE_WORKER,
        hparams={**_ZOO_TRPO_MUJOCO, "gamma": 0.9999},
    ),
    Preset(
        "trpo/humanoid",
        f"{ZOO_TRPO}, Humanoid-v4 (the MuJoCo values, 2M steps)",
        envs=("Humanoid-v*",),
        steps=2_000_000,
        settings=_ONE_WORKER,
        hparams=_ZOO_TRPO_MUJOCO,
    ),
    Preset(
        "trpo/mujoco",
        f"{ZOO_TRPO}, Hopper-v4, Walker2d-v4, Ant-v4 (tuned), BipedalWalker-v3",
        envs=("Hopper-v*", "Walker2d-v*", "Ant-v*", "BipedalWalker-v*"),
        steps=1_000_000,
        settings=_ONE_WORKER,
        hparams=_ZOO_TRPO_MUJOCO,
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
