"""What W&B gets: every row but training episodes, which go as windows (rlkit.logger),
written by a child process (rlkit.wandb_writer), while metrics.jsonl keeps every row."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import rlkit.logger
from rlkit.logger import Logger, read_metrics
from rlkit.wandb_writer import WandbWriter
from tests.conftest import cli_env
from tests.wandb_records import exit_code, history


class Recorder:
    """Stands in for WandbWriter: keeps the rows it is sent."""

    def __init__(self, run_dir: Path, **kwargs: Any) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []
        self.closed = False
        RECORDERS.append(self)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append((step, dict(metrics)))

    def close(self, exit_code: int = 0) -> None:
        self.closed = True


RECORDERS: list[Recorder] = []


def make_logger(tmp_path: Path) -> Logger:
    return Logger(
        tmp_path,
        total_steps=1000,
        start_step=0,
        log_every=100,
        wandb_mode="offline",
        config={},
        progress=False,
    )


def test_episodes_go_to_wandb_as_windows_and_to_the_file_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rlkit.logger, "WandbWriter", Recorder)
    monkeypatch.setattr(rlkit.logger, "WANDB_EPISODE_WINDOW_S", float("inf"))
    logger = make_logger(tmp_path)
    for step, (episode_return, length) in enumerate([(1.0, 10), (3.0, 30), (-4.0, 20)], 1):
        logger.episode(step * 10, episode_return, length, success=step != 2)
    logger.log(40, {"train/loss": 0.5})  # closes the window first: W&B's steps never go back
    logger.episode(50, 2.0, 5)
    logger.close()

    recorder = RECORDERS[-1]
    assert recorder.closed
    steps = [step for step, _ in recorder.rows]
    assert steps == [30, 40, 50] == sorted(steps)
    window = recorder.rows[0][1]
    assert window == {
        "episode/return": 0.0,
        "episode/return_min": -4.0,
        "episode/return_max": 3.0,
        "episode/length": 20.0,
        "episode/length_min": 10.0,
        "episode/length_max": 30.0,
        "episode/count": 3.0,
        "episode/success": pytest.approx(2 / 3),
    }
    assert recorder.rows[1][1] == {"train/loss": 0.5}
    assert recorder.rows[2][1]["episode/count"] == 1.0  # the last window, sent at close
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [row["episode/return"] for row in rows if "episode/return" in row] == [1, 3, -4, 2]


def test_slow_episodes_keep_a_row_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rlkit.logger, "WandbWriter", Recorder)
    monkeypatch.setattr(rlkit.logger, "WANDB_EPISODE_WINDOW_S", 0.0)  # each window outlasts it
    logger = make_logger(tmp_path)
    for step in range(1, 4):
        logger.episode(step, float(step), step)
    logger.close()
    rows = RECORDERS[-1].rows
    assert [(step, row["episode/return"], row["episode/count"]) for step, row in rows] == [
        (1, 1.0, 1.0),
        (2, 2.0, 1.0),
        (3, 3.0, 1.0),
    ]


def test_offline_run_file_has_windows_counting_every_episode(tmp_path: Path) -> None:
    """A real run in a fresh process: wandb is never imported there, and the W&B run file
    (written by the writer process) counts every episode of metrics.jsonl."""
    script = (
        "import sys; from rlkit.training import train; "
        f"r = train('qlearning', env='Taxi-v4', steps=20000, out_dir={str(tmp_path / 'runs')!r}, "
        "wandb='offline', log_every=5000, progress=False); "
        "print(r.run_dir); print('wandb' in sys.modules)"
    )
    temporary = tmp_path / "tmp"  # the processes' temporary folder: left as it was found
    temporary.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**cli_env(), "TMPDIR": str(temporary)},
        timeout=300,
        check=True,
    )
    assert not any(temporary.iterdir()), "W&B's temporary folders were left behind"
    run_dir, imported = done.stdout.split()
    assert imported == "False"
    file_rows = read_metrics(Path(run_dir) / "metrics.jsonl")
    episodes = [row for row in file_rows if "episode/return" in row]
    (record_file,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    rows = history(record_file)
    windows = [row for row in rows if "episode/count" in row]
    assert sum(row["episode/count"] for row in windows) == len(episodes) > 10 * len(rows)
    assert [row["_step"] for row in rows] == sorted(row["_step"] for row in rows)
    sps = [row["time/sps"] for row in file_rows if "time/sps" in row]
    assert [row["time/sps"] for row in rows if "time/sps" in row] == sps and len(sps) >= 3
    assert exit_code(record_file) == 0
    assert done.stderr.count("\n") == 1, done.stderr  # the start line, no W&B output


def test_a_writer_whose_run_process_dies_finishes_with_exit_code_1(tmp_path: Path) -> None:
    writer = WandbWriter(tmp_path, mode="offline", config={"seed": 1})
    writer.log({"episode/return": 1.0}, step=5)
    process = writer._process
    assert process is not None and process.stdin is not None
    process.stdin.close()  # as when the run's process is killed: input ends, no finish
    assert process.wait(timeout=120) == 0
    (record_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    assert [row["episode/return"] for row in history(record_file)] == [1.0]
    assert exit_code(record_file) == 1


def test_online_without_a_reachable_server_logs_offline_at_once(tmp_path: Path) -> None:
    """An API key but no server: one line, the run logs offline, and it does not wait for
    W&B's 20 s init timeout (a closed local port stands in for a network that is down)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **cli_env(),
        "WANDB_MODE": "online",
        "WANDB_API_KEY": "a" * 40,
        "WANDB_BASE_URL": f"http://127.0.0.1:{port}",
    }
    command = ["run", "qlearning", "--env", "FrozenLake-v1", "--steps", "1000", "--wandb",
               "online", "--out-dir", str(tmp_path), "--name", "r", "--no-progress"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "rlkit", *command], capture_output=True,
                          text=True, env=environment, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = f"rlkit: W&B online: cannot reach 127.0.0.1:{port} (Connection refused); logging "
    assert [line for line in done.stderr.splitlines() if "W&B" in line][1:] == [
        f"{said}offline instead"
    ]
    (record_file,) = (tmp_path / "r").glob("wandb/offline-run-*/run-*.wandb")
    assert exit_code(record_file) == 0
