"""Environments the ecosystem's ways: namespace plugins (rlkit.envs and gymnasium.envs),
`--env module:function:Id`, env_kwargs errors that name the keyword, env_wrappers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import minigrid  # noqa: F401  (registers the MiniGrid envs)
import numpy as np
import pytest

from rlkit.config import validate
from rlkit.environments import (
    EnvWrapper,
    load_env_wrappers,
    make_env,
    make_vector_env,
    resolve_env_id,
)
from rlkit.errors import UserError
from rlkit.registry import env_plugins, is_env_id_name
from rlkit.settings import RunSettings
from tests.conftest import cli_env, run_cli
from tests.test_cli_errors import assert_user_error
from tests.test_plugins import cli, python

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def namespace_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/nsplugin installed by pip into a folder of its own."""
    site = tmp_path_factory.mktemp("nssite")
    source = tmp_path_factory.mktemp("nssrc") / "nsplugin"
    shutil.copytree(DATA / "nsplugin", source)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    command = [*pip, "--target", str(site), str(source)]
    subprocess.run(command, check=True, capture_output=True, env=cli_env())
    return site


def fresh(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter (nothing registered yet), from the repository root."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )


# ------------------------------------------------------------ namespace plugins


def test_entry_point_names_that_are_ids_keep_their_meaning() -> None:
    assert is_env_id_name("rlkit/TMaze-v0") and is_env_id_name("Maze-v3")
    assert is_env_id_name("ns/Maze") and not is_env_id_name("MinAtar")
    assert "rlkit/TMaze-v0" in env_plugins()  # rlkit's own id-form plugins


def test_namespace_plugins_are_listed_with_the_ids_they_register(namespace_site: Path) -> None:
    listed = cli(namespace_site, "list", "envs")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    assert "listing runs each one's function" in out
    assert "Poles/*" in out and "rlkit_nsplugin:register_poles  [rlkit.envs:" in out
    assert "Poles/Long-v0, Poles/Short-v0" in out
    assert "Walls/*" in out and "[gymnasium.envs: rlkit-namespace-example]" in out
    assert "Walls/Corridor-v0" in out
    assert "MinAtar/Breakout-v1" in out  # MinAtar declares gymnasium.envs itself
    assert "Broken/*" in out and "failed: env plugin 'Broken'" in out
    assert "raised RuntimeError: this plugin is broken" in out
    assert "__root__" not in out
    assert "rlkit/TMaze-v0" in out  # the id form is listed as before


def test_a_namespace_plugin_runs_once_per_process_when_its_ids_are_asked_for(
    namespace_site: Path,
) -> None:
    done = python(
        namespace_site,
        "import gymnasium, rlkit_nsplugin\n"
        "from rlkit.environments import make_env, resolve_env_id\n"
        "assert 'Poles/Short-v0' not in gymnasium.registry\n"
        "resolve_env_id('CartPole-v1')\n"
        "assert rlkit_nsplugin.CALLS == {'poles': 0, 'walls': 0}  # nothing asked for yet\n"
        "env = make_env('Poles/Short-v0', seed=0)\n"
        "assert env.spec.max_episode_steps == 20\n"
        "make_env('Poles/Long-v0', seed=1)\n"
        "assert resolve_env_id('Walls/Corridor-v0') == 'Walls/Corridor-v0'\n"
        "assert resolve_env_id('Valley') == 'Valley'  # a bare name holding an env class\n"
        "print(rlkit_nsplugin.CALLS)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'poles': 1, 'walls': 1}"


@pytest.mark.slow
def test_a_broken_namespace_plugin_is_a_one_line_error(namespace_site: Path) -> None:
    result = cli(namespace_site, "run", "dqn", "--env", "Broken/Thing-v0", "--steps", "10")
    assert_user_error(result, "env plugin 'Broken'", "raised RuntimeError: this plugin is broken")
    unknown = cli(namespace_site, "run", "dqn", "--env", "Poles/Shorter-v0", "--steps", "10")
    assert_user_error(unknown, "unknown env 'Poles/Shorter-v0'", "did you mean 'Poles/Short-v0'")


def test_minatar_works_by_its_id_alone() -> None:
    """MinAtar registers through gymnasium.envs, which gymnasium 1.x no longer loads."""
    done = fresh(
        "import gymnasium\n"
        "from rlkit.environments import make_env\n"
        "assert 'MinAtar/Breakout-v1' not in gymnasium.registry\n"
        "env = make_env('MinAtar/Breakout-v1', seed=0)\n"
        "print(env.observation_space)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "Box(False, True, (10, 10, 4), bool)" in done.stdout


# ------------------------------------------------------------ --env module:function:Id


def test_module_function_id_calls_the_registration_function() -> None:
    done = fresh(
        "import gymnasium\n"
        "from rlkit.environments import make_env, resolve_env_id\n"
        "env_id = resolve_env_id('minatar.gym:register_envs:MinAtar/Breakout-v1')\n"
        "assert env_id == 'MinAtar/Breakout-v1'\n"
        "env = make_env('minatar.gym:register_envs:MinAtar/Freeway-v1', seed=0)\n"
        "print(env.spec.id)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "MinAtar/Freeway-v1"


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        (
            "minatar.gym:no_such:MinAtar/Breakout-v1",
            ("module 'minatar.gym' has no function 'no_such'", "module:function:Id"),
        ),
        (
            "minatar.gym:BaseEnv.metadata:MinAtar/Breakout-v1",
            ("has no function 'BaseEnv.metadata'",),
        ),
        (
            "minatar.gym:register_envs:MinAtar/Breakouts-v1",
            (
                "minatar.gym.register_envs() did not register 'MinAtar/Breakouts-v1'",
                "(did you mean 'MinAtar/Breakout-v1'?)",
                "it registers: MinAtar/Asterix-v0",
            ),
        ),
        ("no_such_module:register:X-v0", ("cannot import module 'no_such_module'",)),
        ("a:b:c:d", ("--env a:b:c:d: give module:Id", "module:function:Id")),
        ("minatar.gym::MinAtar/Breakout-v1", ("each part non-empty",)),
        (
            "tests.spaces_envs:failing_registration:X-v0",
            ("tests.spaces_envs.failing_registration() raised RuntimeError: registration failed",),
        ),
        ("tests.spaces_envs:DICT_CUE_ID:X-v0", ("has a non-callable 'DICT_CUE_ID'",)),
    ],
)
@pytest.mark.filterwarnings("ignore:.*Overriding environment")  # MinAtar's ids registered again
def test_bad_env_forms_are_one_line_errors(env: str, fragments: tuple[str, ...]) -> None:
    with pytest.raises(UserError) as error:
        resolve_env_id(env)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_registration_function_that_raises_is_a_one_line_cli_error() -> None:
    result = run_cli("run", "dqn", "--env", "tests.spaces_envs:failing_registration:X-v0")
    assert_user_error(result, "tests.spaces_envs.failing_registration() raised RuntimeError")


# ------------------------------------------------------------ env_kwargs


@pytest.mark.parametrize(
    ("env", "kwargs", "message"),
    [
        (
            "CartPole-v1",
            {"sutton_barto_rewards": True},
            "env_kwargs.sutton_barto_rewards: CartPole-v1 takes no keyword "
            "'sutton_barto_rewards' (did you mean 'sutton_barto_reward'?); "
            "accepted: sutton_barto_reward",
        ),
        (
            "FrozenLake-v1",
            {"map_name": "9x9"},
            "env_kwargs.map_name='9x9' rejected by FrozenLake-v1: KeyError: '9x9'",
        ),
        (
            "MiniGrid-Empty-5x5-v0",
            {"size": 2},
            "env_kwargs.size=2 rejected by MiniGrid-Empty-5x5-v0: AssertionError",
        ),
        (
            "MiniGrid-Empty-5x5-v0",
            {"size": 2, "max_steps": 10},
            "env_kwargs size=2, max_steps=10 rejected by MiniGrid-Empty-5x5-v0: AssertionError",
        ),
        (
            "rlkit-tests/DictCue-v0",
            {"cue": "colour", "length": 3},
            "env_kwargs.cue='colour' rejected by rlkit-tests/DictCue-v0: ValueError: cue must be",
        ),
    ],
)
def test_env_kwargs_an_env_rejects_are_one_line_errors_naming_the_keyword(
    env: str, kwargs: dict[str, Any], message: str
) -> None:
    import tests.spaces_envs  # noqa: F401  (registers rlkit-tests/DictCue-v0)

    with pytest.raises(UserError) as error:
        make_env(env, seed=0, env_kwargs=kwargs)
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_a_bad_env_keyword_stops_a_run_with_one_line() -> None:
    result = run_cli("run", "dqn", "--env", "CartPole-v1", "--set", "env_kwargs.colour=red")
    assert_user_error(result, "env_kwargs.colour: CartPole-v1 takes no keyword 'colour'")


# ------------------------------------------------------------ env_wrappers


def test_wrappers_apply_in_order_inside_make_env() -> None:
    wrappers = [
        {"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": 5}},
        EnvWrapper(wrapper="gymnasium.wrappers:DtypeObservation", kwargs={"dtype": "float64"}),
    ]
    env = make_env("CartPole-v1", seed=0, env_wrappers=wrappers)
    assert type(env).__name__ == "CheckedEnv"  # rlkit's, outside the user's
    wrapped = env.env
    assert type(wrapped).__name__ == "DtypeObservation"
    assert type(wrapped.env).__name__ == "TimeLimit" and wrapped.env._max_episode_steps == 5
    assert env.observation_space.dtype == np.float64
    env.reset()
    steps, truncated, terminated = 0, False, False
    while not (terminated or truncated):
        observation, _, terminated, truncated, _ = env.step(steps % 2)
        steps += 1
    assert observation.dtype == np.float64 and steps <= 5 and (truncated or steps < 5)
    lake = make_env(
        "FrozenLake-v1",
        seed=0,
        env_wrappers=[
            {"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": 2}}
        ],
    )
    # rlkit's success report wraps them, and its API check wraps everything
    assert type(lake).__name__ == "CheckedEnv" and type(lake.env).__name__ == "ReportSuccess"


def test_every_copy_of_a_vector_env_gets_the_wrappers() -> None:
    wrappers = [{"wrapper": "gymnasium.wrappers:DtypeObservation", "kwargs": {"dtype": "float64"}}]
    envs = make_vector_env("CartPole-v1", num_envs=3, env_wrappers=wrappers)
    assert envs.single_observation_space.dtype == np.float64
    observations, _ = envs.reset(seed=0)
    assert observations.dtype == np.float64 and observations.shape == (3, 4)
    for env in envs.envs:  # type: ignore[attr-defined]
        assert type(env).__name__ == "CheckedEnv" and type(env.env).__name__ == "DtypeObservation"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"wrapper": "gymnasium.wrappers.TimeLimit"}, "give the wrapper as module:Class"),
        ({"wrapper": "no_such_module:Wrap"}, "cannot import module 'no_such_module'"),
        (
            {"wrapper": "gymnasium.wrappers:TimeLimits"},
            "module 'gymnasium.wrappers' has no 'TimeLimits' (did you mean 'TimeLimit'?)",
        ),
        ({"wrapper": "gymnasium.spaces:Box"}, "gymnasium.spaces:Box is not a gymnasium.Wrapper"),
        (
            {"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_steps": 5}},
            "no keyword 'max_steps' (did you mean 'max_episode_steps'?); "
            "accepted: max_episode_steps",
        ),
        (
            {"wrapper": "gymnasium.wrappers:TimeLimit"},
            "kwargs {}: missing a required argument: 'max_episode_steps'",
        ),
        (
            {"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": -1}},
            "kwargs {'max_episode_steps': -1} rejected: ValueError: Expect the",
        ),
        ({"wraper": "gymnasium.wrappers:TimeLimit"}, "unknown key 'wraper'"),
    ],
)
def test_bad_wrappers_are_one_line_errors_naming_them(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as error:
        make_env(
            "CartPole-v1",
            seed=0,
            env_wrappers=[
                {"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": 9}},
                entry,
            ],
        )
    text = str(error.value)
    assert "\n" not in text
    assert message in text, text
    if "wrapper" in entry:
        assert text.startswith(f"env_wrappers.1 ({entry['wrapper']}): "), text


def test_wrappers_are_checked_before_any_env_is_made() -> None:
    with pytest.raises(UserError, match="no_such_module"):
        load_env_wrappers([{"wrapper": "no_such_module:Wrap"}])
    assert load_env_wrappers(None) == []


def test_atari_games_take_no_wrappers() -> None:
    wrappers = [{"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": 5}}]
    with pytest.raises(UserError, match="env_wrappers apply to Gymnasium envs; ALE/Pong-v5"):
        make_env("Pong", seed=0, env_wrappers=wrappers)
    with pytest.raises(UserError, match="env_wrappers apply to Gymnasium envs"):
        make_vector_env("Pong", num_envs=2, env_wrappers=wrappers)


def test_env_wrappers_is_a_run_setting() -> None:
    base = {"agent": "dqn", "env": "CartPole-v1", "steps": 10}
    entry = {"wrapper": "gymnasium.wrappers:TimeLimit", "kwargs": {"max_episode_steps": 50}}
    settings = validate(RunSettings, {**base, "env_wrappers": [entry]}, {}, "run settings")
    assert settings.env_wrappers == [EnvWrapper(**entry)]
    assert validate(RunSettings, base, {}, "run settings").env_wrappers == []
    with pytest.raises(UserError, match=r"unknown key 'env_wrappers\.0\.kwarg'"):
        validate(
            RunSettings, {**base, "env_wrappers": [{**entry, "kwarg": {}}]}, {}, "run settings"
        )
