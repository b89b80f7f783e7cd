"""Seed groups: `rlkit run --seeds` in-process and on Ray, `--resume GROUP_DIR` after
Ctrl-C, a failing seed, `rlkit eval GROUP_DIR` and `rlkit plot GROUP_DIR ...`.

Q-learning on FrozenLake with a few thousand steps: seconds per seed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from matplotlib.collections import PolyCollection

from rlkit import cli
from rlkit.errors import UserError
from rlkit.group import SUMMARY_FILE, new_group, parse_seeds, read_group, run_group
from rlkit.logger import read_metrics
from rlkit.plot import draw_groups, plot_groups
from rlkit.stats import summarise
from tests.conftest import CliResult, cli_env, run_cli, tree_digest
from tests.wandb_records import group as wandb_group

FROZEN = ("qlearning", "--env", "FrozenLake-v1", "--steps", "3000")


def rlkit_lines(stderr: str) -> list[str]:
    """stderr's lines, each one of rlkit's own (no Ray, Tune or W&B output)."""
    lines = stderr.splitlines()
    assert lines and all(line.startswith("rlkit: ") for line in lines), stderr
    return lines


def learning_rows(run_dir: Path) -> list[dict]:
    """Metric rows without wall-clock fields, which differ between identical runs."""
    rows = []
    for row in read_metrics(run_dir / "metrics.jsonl"):
        kept = {k: v for k, v in row.items() if k != "wall_time" and not k.startswith("time/")}
        if len(kept) > 1:
            rows.append(kept)
    return rows


@pytest.fixture(scope="module")
def inprocess_group(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CliResult]:
    """Three seeds, one after another in the CLI's process, W&B offline."""
    out = tmp_path_factory.mktemp("groups")
    result = run_cli(
        "run", *FROZEN, "--seeds", "0-2", "--set", "pool=inprocess", "--out-dir", str(out),
        "--name", "inproc", "--wandb", "offline",
    )  # fmt: skip
    return out / "inproc", result


@pytest.fixture(scope="module")
def ray_group(tmp_path_factory: pytest.TempPathFactory, ray_local: float) -> Path:
    """The same three seeds, one Ray actor each, on the session's Ray."""
    group = new_group(
        "qlearning",
        config=None,
        overrides=[],
        flags={
            "env": "FrozenLake-v1",
            "steps": 3000,
            "out_dir": str(tmp_path_factory.mktemp("groups")),
            "wandb": "disabled",
        },
        seeds=[0, 1, 2],
        name="onray",
        final_episodes=20,
    )
    assert group.parallel == "ray"
    result = run_group(group)
    assert not result.interrupted and not result.failed
    return group.directory


def test_seeds_are_ranges_lists_or_both() -> None:
    assert parse_seeds("0-9") == list(range(10))
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("0-2, 5,8-9") == [0, 1, 2, 5, 8, 9]
    for bad in ("", "a", "3-1", "-1", "1-", "0-2,2", "0-5000"):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)


def test_bad_group_input_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out-dir", str(tmp_path / "runs")]
    for argv in (
        ["run", *FROZEN, "--seeds", "4-2", *out],
        ["run", *FROZEN, "--seeds", "0-2", "--seed", "1", *out],
        ["run", *FROZEN, "--final-episodes", "5", *out],
        ["run", *FROZEN, "--seeds", "0-2", "--set", "gamma=abc", *out],
        ["run", *FROZEN, "--seeds", "0-2", "--address", "127.0.0.1:1", *out],
        ["run", "--resume", str(tmp_path)],
    ):
        assert cli.main(argv) == 2, argv
        assert capsys.readouterr().err.count("\n") == 1, argv
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_group_in_process(inprocess_group: tuple[Path, CliResult]) -> None:
    directory, result = inprocess_group
    assert result.returncode == 0, result.stderr
    lines = rlkit_lines(result.stderr)
    assert len(lines) == 1 + 2 * 3 + 1  # the group, a start and an end per seed, the dir
    assert [line.split(":")[1].strip() for line in lines[1:-1]] == [
        f"seed {seed} {event}" for seed in (0, 1, 2) for event in ("started", "finished")
    ]
    record = json.loads((directory / "group.json").read_text())
    assert record["seeds"] == [0, 1, 2] and record["parallel"] == "inprocess"
    assert record["git_commit"] and record["command"]
    assert all(run["status"] == "finished" for run in record["runs"].values())
    group_config = yaml.safe_load((directory / "config.yaml").read_text())
    assert group_config["agent"] == "qlearning" and "seed" not in group_config
    for seed in (0, 1, 2):
        run_dir = directory / f"seed-{seed}"
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["seed"] == seed and config["wandb_group"] == "inproc"
        assert config["pool"] == "inprocess" and config["threads"] == 1
        assert config["eval_every"] == 150  # 20 evaluations over the run
        rows = read_metrics(run_dir / "metrics.jsonl")
        assert sum("eval/return" in row for row in rows) >= 19
        (record_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
        assert wandb_group(record_file) == "inproc"
        assert "qlearning on FrozenLake-v1" in (directory / "logs" / f"seed-{seed}.log").read_text()
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    returns = [row["return"] for row in summary["seeds"]]
    assert len(returns) == 3 and all(0.0 <= value <= 1.0 for value in returns)
    expected = summarise(returns)
    assert summary["aggregate"]["return"]["iqm"] == pytest.approx(expected.iqm)
    assert summary["aggregate"]["return"]["mean_ci"] == pytest.approx(list(expected.mean_ci))
    assert "success_rate" in summary["aggregate"]  # FrozenLake reports success
    assert result.stdout.count("finished") == 3 and "IQM" in result.stdout


@pytest.mark.slow
def test_group_on_shared_ray_gives_the_in_process_results(
    inprocess_group: tuple[Path, CliResult], ray_group: Path
) -> None:
    """Each seed's run on its own actor learns exactly what it learns in-process."""
    inprocess, _ = inprocess_group
    for seed in (0, 1, 2):
        assert learning_rows(ray_group / f"seed-{seed}") == learning_rows(
            inprocess / f"seed-{seed}"
        )
        assert (ray_group / "logs" / f"seed-{seed}.log").is_file()  # written by its actor
    on_ray = json.loads((ray_group / SUMMARY_FILE).read_text())
    here = json.loads((inprocess / SUMMARY_FILE).read_text())
    assert [row["return"] for row in on_ray["seeds"]] == [row["return"] for row in here["seeds"]]


@pytest.mark.slow
def test_eval_group_json(
    inprocess_group: tuple[Path, CliResult], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, _ = inprocess_group
    result = run_cli("eval", str(directory), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    # the same 20 episodes of each run's own evaluation stream: the same returns
    assert [row["return"] for row in data["seeds"]] == [row["return"] for row in summary["seeds"]]
    assert data["aggregate"]["return"]["count"] == 3
    assert cli.main(["eval", str(directory), "--episodes", "5"]) == 0
    assert "return (5 episodes)" in capsys.readouterr().out


def test_plot_two_groups_one_band_each(
    inprocess_group: tuple[Path, CliResult],
    ray_group: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, _ = inprocess_group
    figure = draw_groups([directory, ray_group], metric="eval/return")
    (axes,) = figure.axes
    bands = [artist for artist in axes.collections if isinstance(artist, PolyCollection)]
    assert len(bands) == 2 and len(axes.lines) == 2
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        "inproc (3 seeds)",
        "onray (3 seeds)",
    ]
    steps = axes.lines[0].get_xdata()
    assert steps[0] == 150 and len(steps) >= 19  # x: environment steps, one per evaluation
    result = run_cli("plot", str(directory), str(ray_group), "-o", str(tmp_path / "groups.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"
    svg = plot_groups([directory], tmp_path / "mean.svg", metric="eval/return", aggregate="mean",
                      wall_clock=True)  # fmt: skip
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    mixed = ["plot", str(directory), str(directory / "seed-0"), "-o", str(tmp_path / "x.png")]
    assert cli.main(mixed) == 2
    assert capsys.readouterr().err.count("\n") == 1


def wait_for(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"no '{text}' in {path}: {path.read_text()}"
        time.sleep(0.05)


@pytest.mark.slow
def test_ctrl_c_then_resume_finishes_the_group(tmp_path: Path) -> None:
    """Seed 0 finishes, seed 1 is stopped partway by Ctrl-C, seed 2 never starts; --resume
    leaves seed 0 alone, resumes seed 1 from its checkpoint and starts seed 2."""
    stderr = tmp_path / "stderr.txt"
    command = [
        sys.executable, "-m", "rlkit", "run", "qlearning", "--env", "Taxi-v4",
        "--steps", "100000", "--checkpoint-every", "5000", "--seeds", "0-2",
        "--set", "pool=inprocess", "--wandb", "disabled",
        "--out-dir", str(tmp_path), "--name", "taxi",
    ]  # fmt: skip
    with open(stderr, "w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=cli_env())
        wait_for(stderr, "seed 1 started")
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=120)
    assert process.returncode == 130, stderr.read_text()
    directory = tmp_path / "taxi"
    assert f"rlkit run --resume {directory}" in stderr.read_text()
    runs = json.loads((directory / "group.json").read_text())["runs"]
    assert runs["0"]["status"] == "finished"
    assert runs["1"]["status"] == "interrupted" and runs["1"]["step"] < 100_000
    assert runs["2"]["status"] == "not started" and not (directory / "seed-2").exists()
    finished = tree_digest(directory / "seed-0")
    stopped_at = runs["1"]["step"]

    result = run_cli("run", "--resume", str(directory))
    assert result.returncode == 0, result.stderr
    lines = rlkit_lines(result.stderr)
    assert "rlkit: seed 0 finished before; left as it is" in lines
    assert tree_digest(directory / "seed-0") == finished
    runs = json.loads((directory / "group.json").read_text())["runs"]
    assert all(runs[seed]["status"] == "finished" for seed in "012")
    log = (directory / "logs" / "seed-1.log").read_text()
    assert f"resuming {directory / 'seed-1'} from step {stopped_at}" in log
    steps = [row["step"] for row in read_metrics(directory / "seed-1" / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] >= 99_000
    assert len(json.loads((directory / SUMMARY_FILE).read_text())["aggregate"]) == 1
    again = run_cli("run", "--resume", str(directory), "--steps", "5")
    assert again.returncode == 2 and "--steps cannot be changed" in again.stderr


@pytest.mark.slow
def test_a_failing_seed_is_one_line_and_the_others_go_on(tmp_path: Path) -> None:
    """The first env to reach step 1500 fails (seed 0's); seeds 1 and 2 run to the end."""
    marker = tmp_path / "failed-once"
    result = run_cli(
        "run", "qlearning", "--env", "tests.flaky_env:rlkit-test/FlakyGridWorld-v0",
        "--steps", "3000", "--seeds", "0-2", "--set", "pool=inprocess", "--wandb", "disabled",
        "--set", f"env_kwargs.fail_marker={marker}", "--set", "env_kwargs.fail_at=1500",
        "--out-dir", str(tmp_path), "--name", "flaky",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    lines = rlkit_lines(result.stderr)
    (failed,) = [line for line in lines if "failed after" in line]
    assert failed.startswith("rlkit: seed 0 failed after")
    assert "RuntimeError: flaky env" in failed and "logs/seed-0.log" in failed
    assert "Traceback" in (tmp_path / "flaky" / "logs" / "seed-0.log").read_text()
    assert "1 of 3 seeds failed" in lines[-1]
    group = read_group(tmp_path / "flaky")
    assert [group.records[seed].status for seed in (0, 1, 2)] == ["failed", "finished", "finished"]
    summary = json.loads((tmp_path / "flaky" / SUMMARY_FILE).read_text())
    assert summary["aggregate"]["return"]["count"] == 2
    # --resume runs the failed seed again (the env fails only once)
    refused = run_cli("run", "--resume", str(tmp_path / "flaky"))
    assert refused.returncode == 2 and "--trust-modules" in refused.stderr
    assert read_group(tmp_path / "flaky").records[0].status == "failed"
    # the test env's module is this repository's, not an installed package's (rlkit.trust)
    again = run_cli("run", "--resume", str(tmp_path / "flaky"), "--trust-modules")
    assert again.returncode == 0, again.stderr
    assert read_group(tmp_path / "flaky").records[0].status == "finished"


def test_learning_results_table(inprocess_group: tuple[Path, CliResult]) -> None:
    """benchmarks/learning_results.py: one row per group, against the built-in target."""
    directory, _ = inprocess_group
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "learning_results.py"
    done = subprocess.run(
        [sys.executable, str(path), str(directory)],
        capture_output=True,
        text=True,
        check=True,
        env=cli_env(),
    )
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    passed = sum(row["success_rate"] >= 0.70 for row in summary["seeds"])
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| qlearning")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:4] == ["qlearning", "FrozenLake-v1 (inproc)", "success >= 0.7", f"{passed}/3"]
    commit = json.loads((directory / "group.json").read_text())["git_commit"][:7]
    assert cells[-1] == commit
