"""Checks every registered agent passes, so a new plugin is tested the moment it registers."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

import rlkit
from rlkit.agent import check_spaces, load_agent
from rlkit.environments import make_env
from rlkit.errors import UserError
from rlkit.registry import agent_names, list_agents

# Small environments of different kinds; each agent is tested on the first it accepts.
CANDIDATE_ENVS = ("rlkit/GridWorld-v0", "CartPole-v1", "Pendulum-v1")


def first_supported_env(agent_cls) -> str:
    for env_id in CANDIDATE_ENVS:
        env = make_env(env_id, seed=0)
        try:
            check_spaces("agent", agent_cls, env_id, env.observation_space, env.action_space)
        except UserError:
            continue
        return env_id
    pytest.fail(f"{agent_cls.__name__} accepts none of {CANDIDATE_ENVS}")


@pytest.fixture(params=agent_names())
def agent_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_listing_names_summary_and_paper(agent_name: str) -> None:
    info = next(a for a in list_agents() if a.name == agent_name)
    assert info.summary != "(no summary)" and info.paper


def test_config_defaults_are_valid_and_documented(agent_name: str) -> None:
    agent_cls = load_agent(agent_name)
    config = agent_cls.Config()
    assert type(config).model_validate(config.model_dump()) == config
    for name, field in type(config).model_fields.items():
        assert field.description, f"{agent_name}.{name} has no description (its --help text)"
    assert agent_cls.default_steps > 0


@pytest.mark.slow
def test_short_run_saves_loads_and_acts_the_same(agent_name: str, tmp_path: Path) -> None:
    agent_cls = load_agent(agent_name)
    env_id = first_supported_env(agent_cls)
    result = rlkit.train(
        agent_name,
        env=env_id,
        steps=300,
        seed=0,
        out_dir=str(tmp_path),
        wandb="disabled",
        progress=False,
        name="a",
    )
    assert result.step == 300
    agent = rlkit.load(result.run_dir).agent
    assert agent.step == 300
    env = make_env(env_id, seed=123)
    observation, _ = env.reset()
    state = agent.initial_state()
    copy = rlkit.load(result.run_dir).agent
    copy_state = copy.initial_state()
    for _ in range(20):
        action, state = agent.act(observation, state)
        copy_action, copy_state = copy.act(observation, copy_state)
        np.testing.assert_array_equal(np.asarray(action), np.asarray(copy_action))
        assert env.action_space.contains(action)
        observation, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            observation, _ = env.reset()
            state = copy_state = agent.initial_state()


def test_same_seed_same_learning(agent_name: str, tmp_path: Path) -> None:
    """In-process, every agent is reproducible from its seed. (On Ray, an asynchronous
    agent such as A3C applies gradients in arrival order, which is not; the agents'
    own tests compare their Ray and in-process runs where the order is fixed.)"""
    from tests.test_runs import learning_rows

    env_id = first_supported_env(load_agent(agent_name))
    runs = [
        rlkit.train(
            agent_name,
            env=env_id,
            steps=500,
            seed=4,
            out_dir=str(tmp_path),
            wandb="disabled",
            progress=False,
            name=name,
            pool="inprocess",
        )
        for name in ("x", "y")
    ]
    assert learning_rows(runs[0].run_dir) == learning_rows(runs[1].run_dir)


# Every neural agent on every kind of observation and action space (tests/spaces_envs.py
# and the real MiniGrid and MinAtar packages): a short run, saved, loaded and acting.
SPACE_CASES = {
    "dict": ("tests.spaces_envs:rlkit-tests/DictCue-v0", {"cue": "image"}),
    "tuple": ("tests.spaces_envs:rlkit-tests/DictCue-v0", {"structure": "tuple"}),
    "multidiscrete": (
        "tests.spaces_envs:rlkit-tests/DictCue-v0",
        {"cue": "binary", "actions": "multidiscrete"},
    ),
    "multibinary": ("tests.spaces_envs:rlkit-tests/DictCue-v0", {"actions": "multibinary"}),
    "discrete-observations": ("rlkit/TMaze-v0", {"length": 3, "observations": "discrete"}),
    "minigrid": ("minigrid:MiniGrid-Empty-5x5-v0", {}),
    "minatar": ("MinAtar/Breakout-v1", {}),
}
NEURAL_AGENTS = ("dqn", "trpo", "rpg", "a3c", "nes")
MULTI_ACTIONS = ("multidiscrete", "multibinary")


@pytest.mark.parametrize("case", sorted(SPACE_CASES))
@pytest.mark.parametrize("agent", NEURAL_AGENTS)
def test_every_space_runs_saves_and_acts(agent: str, case: str, tmp_path: Path) -> None:
    env, env_kwargs = SPACE_CASES[case]
    overrides = ["learning_starts=50"] if agent == "dqn" else []
    if agent == "nes":
        overrides = ["population=4", "noise_table_size=200000"]
    run = functools.partial(
        rlkit.train,
        agent,
        env=env,
        steps=200,
        seed=1,
        out_dir=str(tmp_path),
        wandb="disabled",
        progress=False,
        pool="inprocess",
        threads=1,
        env_kwargs=env_kwargs,
        overrides=overrides,
    )
    if agent == "dqn" and case in MULTI_ACTIONS:
        with pytest.raises(UserError, match="dqn needs a Discrete action space"):
            run()
        return
    result = run()
    assert result.step >= 200
    # tests.spaces_envs is this repository's module, not an installed env package
    stats = rlkit.evaluate(result.run_dir, episodes=2, trust_modules=True)
    assert stats.episodes == 2 and np.isfinite(stats.mean)


@pytest.mark.parametrize(
    ("agent", "overrides"),
    [
        ("a3c", ["lstm_size=16"]),
        ("nes", ["lstm_size=8", "population=4", "noise_table_size=200000"]),
        ("rpg", ["shared_torso=true"]),
    ],
)
def test_recurrent_policies_take_the_same_encoders(
    agent: str, overrides: list[str], tmp_path: Path
) -> None:
    """The encoders sit in front of the LSTM: a Dict observation with an image, a Discrete
    part, a nested Dict and a dropped text part, through every recurrent agent."""
    result = rlkit.train(
        agent,
        env="tests.spaces_envs:rlkit-tests/DictCue-v0",
        steps=200,
        seed=2,
        out_dir=str(tmp_path),
        wandb="disabled",
        progress=False,
        pool="inprocess",
        threads=1,
        overrides=overrides,
    )
    loaded = rlkit.load(result.run_dir, trust_modules=True)
    policy = loaded.agent.policy
    assert policy.lstm is not None and policy.encoder.output_dim > 0
    assert rlkit.evaluate(result.run_dir, episodes=2, trust_modules=True).episodes == 2
