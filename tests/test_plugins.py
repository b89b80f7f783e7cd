"""Plugins: a third-party package installed with pip plugs in through entry points alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CliResult, cli_env

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/thirdparty installed by pip into a folder of its own."""
    site = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / "thirdparty"
    shutil.copytree(DATA / "thirdparty", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
        env=cli_env(),
    )
    return site


def with_site(site: Path) -> dict[str, str]:
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return env


def cli(site: Path, *args: str, cwd: Path | None = None) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "rlkit", *args],
        capture_output=True,
        text=True,
        env=with_site(site),
        cwd=cwd,
        timeout=300,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def python(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=with_site(site),
        timeout=120,
        check=False,
    )


def test_third_party_plugins_are_listed(plugin_site: Path) -> None:
    agents = cli(plugin_site, "list", "agents")
    assert agents.returncode == 0, agents.stderr
    assert "firstaction" in agents.stdout and "always takes one fixed action" in agents.stdout
    assert "qlearning" in agents.stdout and "Watkins 1989" in agents.stdout
    envs = cli(plugin_site, "list", "envs")
    assert "thirdparty/Corridor-v0" in envs.stdout and "rlkit/GridWorld-v0" in envs.stdout


@pytest.mark.slow
def test_third_party_agent_and_env_run(plugin_site: Path, tmp_path: Path) -> None:
    ran = cli(
        plugin_site,
        "run",
        "firstaction",
        "--env",
        "thirdparty/Corridor-v0",
        "--steps",
        "400",
        "--wandb",
        "disabled",
        "--out-dir",
        str(tmp_path),
        "--name",
        "third",
    )
    assert ran.returncode == 0, ran.stderr
    evaluated = cli(plugin_site, "eval", str(tmp_path / "third"), "--episodes", "3")
    assert "return mean 1 " in evaluated.stdout, evaluated.stdout
    # rlkit's own agent on the third-party environment
    ran = cli(
        plugin_site,
        "run",
        "qlearning",
        "--env",
        "thirdparty/Corridor-v0",
        "--steps",
        "3000",
        "--wandb",
        "disabled",
        "--out-dir",
        str(tmp_path),
        "--name",
        "q",
    )
    assert ran.returncode == 0, ran.stderr
    assert (
        "return mean 1 " in cli(plugin_site, "eval", str(tmp_path / "q"), "--episodes", "3").stdout
    )


def test_listing_imports_no_plugin_and_loading_imports_only_the_named_one(
    plugin_site: Path,
) -> None:
    code = (
        "import sys\n"
        "from rlkit.agent import load_agent\n"
        "from rlkit.registry import list_agents, register_env_plugins\n"
        "names = [a.name for a in list_agents()]\n"
        "register_env_plugins()\n"
        "assert 'firstaction' in names and 'qlearning' in names, names\n"
        "assert 'rlkit_thirdparty.agent' not in sys.modules\n"
        "assert 'rlkit_thirdparty.corridor' not in sys.modules\n"
        "assert 'rlkit.agents.qlearning' not in sys.modules\n"
        "load_agent('firstaction')\n"
        "assert 'rlkit_thirdparty.agent' in sys.modules\n"
        "assert 'rlkit.agents.qlearning' not in sys.modules\n"
        "print('ok')\n"
    )
    done = python(plugin_site, code)
    assert done.stdout.strip() == "ok", done.stderr


def test_agent_interface_is_checked_on_load(plugin_site: Path, tmp_path: Path) -> None:
    result = cli(plugin_site, "run", "brokenagent", "--env", "Taxi-v4", "--out-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("rlkit: agent 'brokenagent'")
    assert "is not an rlkit agent" in result.stderr and "learn" in result.stderr
    assert not any(tmp_path.iterdir())


def test_plugin_envs_register_in_spawned_subprocesses(plugin_site: Path, tmp_path: Path) -> None:
    script = tmp_path / "spawn_envs.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "def make(env_id):\n"
        "    from rlkit.environments import make_env\n"
        "    env = make_env(env_id, seed=0)\n"
        "    return int(env.observation_space.n)\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('spawn').Pool(1) as pool:\n"
        "        print(pool.map(make, ['thirdparty/Corridor-v0', 'rlkit/GridWorld-v0']))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=with_site(plugin_site),
        timeout=120,
        check=False,
    )
    assert done.stdout.strip() == "[5, 56]", done.stderr


@pytest.mark.slow
def test_module_colon_id_form(tmp_path: Path, plugin_site: Path) -> None:
    package = tmp_path / "mymodule_envs.py"
    package.write_text(
        "import gymnasium\n"
        "gymnasium.register(id='MyChain-v0', entry_point='rlkit_thirdparty.corridor:Corridor',"
        " kwargs={'length': 3})\n"
    )
    site = Path(os.pathsep.join([str(plugin_site), str(tmp_path)]))
    ran = cli(
        site,
        "run",
        "qlearning",
        "--env",
        "mymodule_envs:MyChain-v0",
        "--steps",
        "2000",
        "--wandb",
        "disabled",
        "--out-dir",
        str(tmp_path / "runs"),
        "--name",
        "chain",
    )
    assert ran.returncode == 0, ran.stderr
    run_dir = str(tmp_path / "runs" / "chain")
    # a bare module (no installed distribution, so no env package): eval of the run dir
    # imports it only when told to trust it (rlkit/trust.py)
    refused = cli(site, "eval", run_dir, "--episodes", "2")
    assert refused.returncode == 2, refused.stderr
    assert "module 'mymodule_envs' belongs to no installed distribution" in refused.stderr
    evaluated = cli(site, "eval", run_dir, "--episodes", "2", "--trust-modules")
    assert evaluated.returncode == 0 and "length mean 2.0" in evaluated.stdout, evaluated.stderr
