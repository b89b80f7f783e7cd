"""A real two-node Ray cluster on loopback: `ray start --head` plus a second `ray start`,
each with one CPU, and rlkit pointed at it with `--address` and nothing else changed.

Each node's processes carry RLKIT_TEST_NODE (head or second); the env
tests.cluster_envs:NodeCartPole-v0 leaves a marker file naming the node that made it,
so the tests can assert that work ran on both nodes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rlkit.logger import read_metrics
from tests.conftest import cli_env, run_cli, tree_digest

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 90


@dataclass
class Cluster:
    address: str
    markers: Path

    def nodes_that_worked(self) -> set[str]:
        return {path.name.rsplit("-", 1)[0] for path in self.markers.iterdir()}

    def clear_markers(self) -> None:
        for path in self.markers.iterdir():
            path.unlink()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def node_env(name: str, markers: Path) -> dict[str, str]:
    env = cli_env()
    env.pop("RAY_ADDRESS", None)
    env.update(
        {
            "RLKIT_TEST_NODE": name,
            "RLKIT_TEST_MARKERS": str(markers),
            "PYTHONPATH": str(REPO),  # the nodes' workers import tests.cluster_envs
            "RAY_AUTH_MODE": "disabled",
        }
    )
    return env


def start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`ray start ... --block` in its own process group (so teardown stops only it)."""
    with open(log, "wb") as output:
        node = subprocess.Popen(
            [RAY, "start", "--num-cpus=1", "--disable-usage-stats", "--block", *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while "block forever" not in log.read_text(errors="replace"):
        if node.poll() is not None or time.monotonic() > deadline:
            stop_node(node)
            pytest.fail(f"ray start failed: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return node


def stop_node(node: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    markers = root / "markers"
    markers.mkdir()
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(
        ["--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--include-dashboard=false"],
        node_env("head", markers),
        root / "head.log",
    )
    second = None
    try:
        second = start_node(
            [f"--address={address}", "--node-ip-address=127.0.0.1"],
            node_env("second", markers),
            root / "second.log",
        )
        yield Cluster(address, markers)
    finally:
        if second is not None:
            stop_node(second)
        stop_node(head)


def cluster_cli(
    *args: str, cluster: Cluster, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    env = cli_env()
    env.pop("RAY_ADDRESS", None)
    env.update({"RAY_AUTH_MODE": "disabled", "RLKIT_TEST_MARKERS": str(cluster.markers)})
    return subprocess.run(
        [sys.executable, "-m", "rlkit", *args, "--address", cluster.address],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_nes_runs_its_population_on_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    cluster.clear_markers()
    done = cluster_cli(
        "run", "nes", "--env", "tests.cluster_envs:NodeCartPole-v0",
        "--config", "configs/nes/cartpole.yaml", "--steps", "20000", "--workers", "2",
        "--out-dir", str(tmp_path), "--name", "nes", "--no-progress",
        "--set", "threads=1",
        cluster=cluster,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"connected to Ray at {cluster.address}" in done.stderr
    assert cluster.nodes_that_worked() >= {"head", "second"}
    rows = read_metrics(tmp_path / "nes" / "metrics.jsonl")
    assert rows[-1]["step"] == 20_000


@pytest.mark.slow
def test_a_sweep_runs_its_trials_on_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    """Two DQN trials, one CPU each, on a cluster of two one-CPU nodes: one per node."""
    sweep = {
        "name": "cluster",
        "run": {
            "agent": "dqn",
            "env": "tests.cluster_envs:NodeCartPole-v0",
            "steps": 3000,
            "log_every": 500,
            "hparams": {"learning_starts": 500, "buffer_size": 5000},
        },
        "search": {"seed": {"grid": [1, 2]}},
        "scheduler": {"kind": "fifo"},
        "max_concurrent": 2,
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(sweep))
    cluster.clear_markers()
    done = cluster_cli("sweep", str(path), "--out-dir", str(tmp_path), cluster=cluster)
    assert done.returncode == 0, done.stderr[-3000:]
    assert cluster.nodes_that_worked() >= {"head", "second"}
    assert done.stdout.count(" finished") == 2, done.stdout
    for trial in ("trial-00000", "trial-00001"):
        rows = read_metrics(tmp_path / "cluster" / "trials" / trial / "metrics.jsonl")
        assert rows[-1]["step"] == 3000
    assert (tmp_path / "cluster" / "best.yaml").is_file()


@pytest.mark.slow
def test_a_run_started_on_a_local_ray_resumes_on_the_cluster(
    cluster: Cluster, tmp_path: Path
) -> None:
    """`--resume RUN_DIR --address` moves an interrupted run to another Ray (say, its
    first cluster went away); a wrong address is refused before the run dir changes."""
    run_dir = tmp_path / "moved"
    done = run_cli(
        "run", "nes", "--env", "tests.cluster_envs:NodeCartPole-v0",
        "--config", "configs/nes/cartpole.yaml", "--steps", "12000",
        "--checkpoint-every", "4000", "--keep-checkpoints", "5", "--set", "threads=1",
        "--out-dir", str(tmp_path), "--name", "moved", "--no-progress", cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoints = sorted((run_dir / "checkpoints").glob("step-*.pt"))
    for path in checkpoints[1:]:
        path.unlink()  # as if stopped at the first checkpoint
    before = tree_digest(run_dir)

    # --trust-modules: tests.cluster_envs is this repository's module, not an installed one
    wrong = run_cli(
        "run", "--resume", str(run_dir), "--trust-modules",
        "--address", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    assert wrong.returncode == 2 and "cannot reach a Ray cluster" in wrong.stderr
    assert tree_digest(run_dir) == before

    cluster.clear_markers()
    done = cluster_cli(
        "run", "--resume", str(run_dir), "--trust-modules", "--no-progress", cluster=cluster
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"connected to Ray at {cluster.address}" in done.stderr
    assert cluster.nodes_that_worked() >= {"head", "second"}
    assert read_metrics(run_dir / "metrics.jsonl")[-1]["step"] == 12_000
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["address"] == cluster.address


@pytest.mark.slow
def test_a_wrong_address_fails_within_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    done = run_cli(
        "run", "nes", "--env", "CartPole-v1", "--address", f"127.0.0.1:{free_port()}",
        "--out-dir", str(tmp_path),
    )  # fmt: skip
    assert time.monotonic() - started < 20
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "cannot reach a Ray cluster there (connection refused)" in done.stderr
    assert not any(tmp_path.iterdir())


@pytest.fixture()
def http2_server() -> Iterator[int]:
    """A server that answers HTTP/2's preface with a SETTINGS frame and nothing else, as
    any HTTP/2 service would: the port it listens on."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(1024)
                connection.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # SETTINGS
                while not stopping.is_set() and connection.recv(1024):
                    pass
            except OSError:
                pass

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stopping.set()
    listener.close()


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [(), ("--seeds", "0-1")], ids=["run", "group"])
def test_an_address_where_http2_but_not_ray_answers_is_one_line_and_leaves_nothing(
    http2_server: int, seeds: tuple[str, ...], tmp_path: Path
) -> None:
    """Ray's own client would retry such a server for about two minutes (the timeout
    below is half that) and print its warnings; rlkit asks it for a Ray cluster id."""
    done = run_cli(
        "run", "qlearning", "--env", "FrozenLake-v1", "--steps", "100", *seeds, "--address",
        f"127.0.0.1:{http2_server}", "--out-dir", str(tmp_path), timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "something answers there, but it is not Ray: no cluster id within 5 s" in done.stderr
    assert not any(tmp_path.iterdir())
