"""Packaging: the rlkit namespace, entry points, lazy imports, and clean lint/type checks."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.conftest import cli_env

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "wandb")


def python_in(cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=cli_env(),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "argv", [None, ["--help"], ["run", "--help"], ["list", "agents"], ["list", "envs"]]
)
def test_import_help_and_list_do_not_import_heavy_packages(tmp_path: Path, argv) -> None:
    action = (
        ""
        if argv is None
        else (
            f"from rlkit.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit as exit:\n    assert exit.code == 0\n"
        )
    )
    code = (
        "import sys\nimport rlkit\n"
        + action
        + f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\nprint('clean')\n"
    )
    done = python_in(tmp_path, code)
    assert done.returncode == 0 and done.stdout.strip().endswith("clean"), done.stderr


def test_plugins_live_under_the_rlkit_namespace(tmp_path: Path) -> None:
    code = (
        "import importlib.util\n"
        "assert importlib.util.find_spec('agents') is None\n"
        "assert importlib.util.find_spec('envs') is None\n"
        "import rlkit.agents.qlearning, rlkit.envs.gridworld\n"
        "print(rlkit.agents.qlearning.__file__)\n"
    )
    done = python_in(tmp_path, code)  # outside the repository: no accidental path entries
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "agents" / "qlearning.py"


def test_wheel_installs_plugins_only_under_rlkit(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        env=cli_env(),
        timeout=300,
    )
    (wheel,) = tmp_path.glob("rlkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rlkit/agents/qlearning.py" in names and "rlkit/envs/gridworld.py" in names
    assert "rlkit/py.typed" in names
    top_level = {name.split("/")[0] for name in names}
    assert top_level <= {
        "rlkit",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "[rlkit.agents]" in text and "[rlkit.envs]" in text and "rlkit = rlkit.cli:main" in text


def test_entry_points_are_declared() -> None:
    agents = {point.name: point.value for point in entry_points(group="rlkit.agents")}
    envs = {point.name: point.value for point in entry_points(group="rlkit.envs")}
    assert agents["qlearning"] == "rlkit.agents.qlearning:QLearning"
    assert envs["rlkit/GridWorld-v0"] == "rlkit.envs.gridworld:GridWorld"


def test_ruff_is_clean() -> None:
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
