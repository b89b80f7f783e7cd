"""Worker pools: the in-process and Ray backends behave alike; Ray replaces dead workers.

The Ray tests share one embedded local Ray (the session fixture `ray_local`) and a few
small pools; the worker classes live in tests/pool_workers.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rlkit.cli import main
from rlkit.errors import UserError
from rlkit.parallel import PROBE_TIMEOUT_S, check_address
from rlkit.pool import Backend, LostCall, WorkerPool, WorkerPoolError, make_pool
from rlkit.raypool import _cpu_share
from rlkit.seeding import derive_seed
from tests.conftest import cli_env
from tests.pool_workers import BrokenWorker, CartPoleWorker, TableWorker

ROOT = Path(__file__).resolve().parents[1]
RUN_SEED = 7
WEIGHTS = np.array([0.0, 0.0, 1.0, 0.0])  # push toward the lean: episodes end in ~40 steps


def worker_kwargs(count: int) -> list[dict[str, Any]]:
    return [{"seed": derive_seed(RUN_SEED, "worker", index=i)} for i in range(count)]


def without_pid(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "pid"}


def assert_same_results(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> None:
    assert len(left) == len(right)
    for mine, theirs in zip(left, right, strict=True):
        mine, theirs = without_pid(mine), without_pid(theirs)
        assert mine.keys() == theirs.keys()
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key], err_msg=key)


def exercise(pool: WorkerPool) -> list[Any]:
    """Two synchronous rollouts, then one asynchronous round; every result, in worker order."""
    first = pool.call_all("rollout", WEIGHTS, 1, steps=60)
    second = pool.call_all("rollout", WEIGHTS * 2, 2, steps=60)
    for index in reversed(range(pool.size)):
        pool.submit(index, "rollout", WEIGHTS, 3 + index, steps=30)
    finished = sorted((pool.wait_any() for _ in range(pool.size)), key=lambda pair: pair[0])
    return [*first, *second, *(result for _, result in finished)]


# --- in-process backend ----------------------------------------------------------------


def test_inprocess_call_all_returns_results_in_worker_order_with_versions() -> None:
    kwargs = worker_kwargs(3)
    with make_pool(CartPoleWorker, kwargs, backend="inprocess") as pool:
        assert pool.size == 3 and pool.restarts == 0
        results = pool.call_all("rollout", WEIGHTS, 5, steps=40)
    assert [result["seed"] for result in results] == [k["seed"] for k in kwargs]
    assert [result["version"] for result in results] == [5, 5, 5]
    assert all(result["pid"] == os.getpid() for result in results)
    assert all(result["observations"].shape == (40, 4) for result in results)
    assert not np.array_equal(results[0]["observations"], results[1]["observations"])


def test_inprocess_runs_submitted_calls_in_submission_order() -> None:
    with make_pool(CartPoleWorker, worker_kwargs(3), backend="inprocess") as pool:
        pool.submit(2, "sleep", 0.0, "first")
        pool.submit(0, "sleep", 0.0, "second")
        assert pool.pending() == [0, 2]
        with pytest.raises(RuntimeError, match="worker 2 already has a call outstanding"):
            pool.submit(2, "sleep", 0.0, "again")
        with pytest.raises(RuntimeError, match="outstanding"):
            pool.call_all("pid")
        index, result = pool.wait_any()
        assert (index, result["tag"]) == (2, "first")
        pool.submit(2, "sleep", 0.0, "third")  # the A3C pattern: resubmit to that worker only
        assert [(i, r["tag"]) for i, r in (pool.wait_any(), pool.wait_any())] == [
            (0, "second"),
            (2, "third"),
        ]
        assert pool.pending() == []
        with pytest.raises(RuntimeError, match="no call outstanding"):
            pool.wait_any()
        with pytest.raises(IndexError, match=r"worker index 3 out of range 0\.\.2"):
            pool.submit(3, "pid")
        with pytest.raises(AttributeError, match="CartPoleWorker has no public method 'pdi'"):
            pool.call_all("pdi")
    with pytest.raises(RuntimeError, match="closed"):
        pool.call_all("pid")


def test_inprocess_copies_arguments_and_results_as_ray_would() -> None:
    with make_pool(CartPoleWorker, worker_kwargs(2), backend="inprocess") as pool:
        buffer = np.zeros(3)
        results = pool.call_all("scribble", buffer)
        assert np.array_equal(buffer, np.zeros(3))  # the workers changed their own copies
        assert all(np.array_equal(result, np.ones(3)) for result in results)
        assert results[0] is not results[1]
        weights = WEIGHTS.copy()
        pool.submit(0, "rollout", weights, 1, steps=20)
        weights[:] = -1.0  # changed after submit: the worker must still get the old values
        reference = make_pool(CartPoleWorker, worker_kwargs(1), backend="inprocess")
        expected = reference.call_all("rollout", WEIGHTS, 1, steps=20)[0]
        assert_same_results([pool.wait_any()[1]], [expected])


def test_inprocess_worker_exceptions_reach_the_caller() -> None:
    with make_pool(CartPoleWorker, worker_kwargs(2), backend="inprocess") as pool:
        with pytest.raises(ValueError, match="boom"):
            pool.call_all("fail", "boom")
        with pytest.raises(UserError, match=r"^bad value$"):
            pool.call_all("fail", "bad value", user_error=True)
        assert pool.call_all("pid") == [os.getpid(), os.getpid()]


def test_make_pool_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        make_pool(CartPoleWorker, [], backend="inprocess")
    with pytest.raises(ValueError, match="unknown pool backend 'threads'"):
        make_pool(CartPoleWorker, worker_kwargs(1), backend="threads")  # type: ignore[arg-type]


def test_cpu_share_fits_all_workers_in_the_free_cpus() -> None:
    assert _cpu_share(1.0, free=2.0, workers=2) == 1.0
    assert _cpu_share(1.0, free=2.0, workers=4) == 0.5
    assert _cpu_share(1.0, free=2.0, workers=3) == 0.6666
    assert _cpu_share(0.25, free=2.0, workers=4) == 0.25
    assert _cpu_share(1.0, free=2.0, workers=16) == 0.125  # 8 workers per CPU at most
    with pytest.raises(UserError, match=r"--workers 17: .* room for at most 16 workers"):
        _cpu_share(1.0, free=2.0, workers=17)
    with pytest.raises(UserError, match="room for at most 0 workers"):
        _cpu_share(1.0, free=0.0, workers=2)


# --- Ray backend (one shared local Ray) ------------------------------------------------


@pytest.fixture(scope="module")
def ray_pool(ray_local: float) -> Iterator[WorkerPool]:
    """Two CartPole workers on Ray, shared by the tests that leave them healthy.

    They reserve half the CPUs, so that the other tests' pools fit beside them.
    """
    cpus = (os.cpu_count() or 1) / 4
    with make_pool(CartPoleWorker, worker_kwargs(2), backend="ray", num_cpus=cpus) as pool:
        yield pool


def test_ray_and_inprocess_give_the_same_results(ray_local: float) -> None:
    with make_pool(CartPoleWorker, worker_kwargs(2), backend="inprocess") as local:
        expected = exercise(local)
    with make_pool(CartPoleWorker, worker_kwargs(2), backend="ray", num_cpus=0.25) as remote:
        results = exercise(remote)
    assert_same_results(results, expected)
    assert [result["version"] for result in results] == [1, 1, 2, 2, 3, 4]
    assert [result["call"] for result in results] == [1, 1, 2, 2, 3, 3]
    assert sum(len(result["episode_returns"]) for result in results) > 0  # episodes ended


def test_ray_workers_run_in_separate_processes(ray_pool: WorkerPool) -> None:
    pids = ray_pool.call_all("pid")
    assert len(set(pids)) == 2 and os.getpid() not in pids
    # the import path the embedded Ray hands its workers holds this repository
    paths = ray_pool.call_all("python_path")
    assert all(str(ROOT) in path.split(os.pathsep) for path in paths)


def test_ray_wait_any_returns_the_first_call_to_finish(ray_pool: WorkerPool) -> None:
    ray_pool.submit(0, "sleep", 1.5, "slow")
    ray_pool.submit(1, "sleep", 0.0, "fast")
    index, result = ray_pool.wait_any()
    assert (index, result["tag"]) == (1, "fast")
    ray_pool.submit(1, "sleep", 0.0, "fast again")  # only worker 1 gets new work
    assert ray_pool.wait_any()[1]["tag"] == "fast again"
    with pytest.raises(TimeoutError):
        ray_pool.wait_any(timeout=0.05)
    with pytest.raises(RuntimeError, match="worker 0 already has a call outstanding"):
        ray_pool.submit(0, "pid")
    assert ray_pool.wait_any()[0] == 0
    assert ray_pool.pending() == [] and ray_pool.restarts == 0


def test_ray_worker_exceptions_reach_the_caller(ray_pool: WorkerPool) -> None:
    with pytest.raises(ValueError, match="boom"):
        ray_pool.call_all("fail", "boom")
    with pytest.raises(UserError) as raised:
        ray_pool.call_all("fail", "--set x=1: x must be a number", user_error=True)
    assert str(raised.value) == "--set x=1: x must be a number"  # as itself: one line
    assert len(ray_pool.call_all("pid")) == 2 and ray_pool.restarts == 0


def test_ray_workers_make_plugin_environments(ray_pool: WorkerPool) -> None:
    results = ray_pool.call_all("plugin_env", "rlkit/GridWorld-v0")
    local = CartPoleWorker(seed=0).plugin_env("rlkit/GridWorld-v0")
    for result in results:
        assert result["registered"] and result["pid"] != os.getpid()
        assert result["space"] == local["space"]
        assert result["observation"] == local["observation"]


@pytest.mark.slow
def test_ray_replaces_a_killed_worker_and_resends_its_call(ray_local: float) -> None:
    events: list[str] = []
    with make_pool(CartPoleWorker, worker_kwargs(2), backend="ray", on_event=events.append) as pool:
        pids = pool.call_all("pid")
        pool.submit(0, "sleep", 1.0, "a")
        pool.submit(1, "sleep", 1.0, "b")
        time.sleep(0.3)
        os.kill(pids[1], signal.SIGKILL)  # mid-call
        results = dict(pool.wait_any() for _ in range(2))
        assert results[0]["tag"] == "a" and results[0]["pid"] == pids[0]
        assert results[1]["tag"] == "b" and results[1]["pid"] != pids[1]  # sent again, new process
        assert results[1]["call"] == 1  # a fresh worker with the same kwargs
        assert pool.restarts == 1
        deaths = [event for event in events if "died" in event]
        assert len(deaths) == 1 and deaths[0].startswith("worker 1 died (")
        assert "replaced" in deaths[0] and str(pids[1]) in deaths[0]

        # and during a synchronous call_all: the results are complete
        killer = threading.Timer(0.3, os.kill, (results[0]["pid"], signal.SIGKILL))
        killer.start()
        finished = pool.call_all("sleep", 1.0, "c")
        killer.join()
        assert [result["tag"] for result in finished] == ["c", "c"]
        assert [result["seed"] for result in finished] == [k["seed"] for k in worker_kwargs(2)]
        assert finished[0]["pid"] != results[0]["pid"] and finished[0]["call"] == 1
        assert finished[1]["pid"] == results[1]["pid"] and finished[1]["call"] == 2
        assert pool.restarts == 2 and sum("worker 0 died" in event for event in events) == 1


@pytest.mark.parametrize("backend", ["inprocess", "ray"])
def test_shared_objects_and_put_values_reach_every_worker_once(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    if backend == "ray":
        request.getfixturevalue("ray_local")
    table = np.arange(1000, dtype=np.float32)
    with make_pool(
        TableWorker, worker_kwargs(2), backend=backend, num_cpus=0.25, shared={"table": table}
    ) as pool:
        weights = pool.put(np.array([1.0, 2.0, 3.0], dtype=np.float32))
        results = pool.call_all("lookup", 10, weights)
        for index in range(2):
            pool.submit(index, "lookup", 20, weights)
        results += [result for _, result in sorted(pool.wait_any() for _ in range(2))]
    expected = [[10.0, 22.0, 36.0]] * 2 + [[20.0, 42.0, 66.0]] * 2
    assert [result["values"].tolist() for result in results] == expected
    assert [result["seed"] for result in results] == [k["seed"] for k in worker_kwargs(2)] * 2
    if backend == "inprocess":
        # one copy for all workers (not the caller's array: a worker cannot change that)
        assert len({result["table_id"] for result in results}) == 1
        assert results[0]["table_id"] != id(table)
    else:
        # read in place from the object store (read-only there), not copied per actor
        assert not any(result["writeable"] for result in results)


def test_ray_returns_a_lost_call_to_the_caller_when_asked(ray_local: float) -> None:
    events: list[str] = []
    table = np.zeros(10, dtype=np.float32)
    with make_pool(
        TableWorker,
        worker_kwargs(2),
        backend="ray",
        num_cpus=0.25,
        shared={"table": table},
        lost_calls="return",
        on_event=events.append,
    ) as pool:
        pids = [result["pid"] for result in pool.call_all("sleep", 0.0, "start")]
        pool.submit(0, "sleep", 1.0, "a")
        pool.submit(1, "sleep", 1.0, "b")
        time.sleep(0.3)
        os.kill(pids[1], signal.SIGKILL)
        results = dict(pool.wait_any() for _ in range(2))
        assert results[0]["tag"] == "a"
        lost = results[1]
        assert isinstance(lost, LostCall)
        assert (lost.method, lost.args) == ("sleep", (1.0, "b")) and str(pids[1]) in lost.reason
        assert pool.restarts == 1 and pool.pending() == []
        assert any("its 'sleep' call returned to the learner" in event for event in events)
        # the replacement works, with the shared table: the caller re-issues the lost call
        pool.submit(1, *[lost.method], *lost.args)
        index, again = pool.wait_any()
        assert (index, again["tag"]) == (1, "b") and again["pid"] not in pids


def test_ray_gives_up_after_max_restarts(ray_local: float) -> None:
    with make_pool(CartPoleWorker, worker_kwargs(1), backend="ray", max_restarts=0) as pool:
        (pid,) = pool.call_all("pid")
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerPoolError, match=r"worker 0 died .*max_restarts=0\), giving up"):
            pool.call_all("pid")


def test_ray_reports_a_worker_that_fails_to_start(ray_local: float) -> None:
    failure = r"worker 0 \(BrokenWorker\) failed to start: .*seed 3"
    with pytest.raises(WorkerPoolError, match=failure):
        make_pool(BrokenWorker, [{"seed": 3}], backend="ray")


@pytest.mark.slow
def test_ray_shares_cpus_when_workers_outnumber_them(ray_local: float) -> None:
    events: list[str] = []
    cpus = os.cpu_count() or 1
    count = 2 * cpus
    with make_pool(
        CartPoleWorker, worker_kwargs(count), backend="ray", on_event=events.append
    ) as pool:
        assert len(set(pool.call_all("pid"))) == count  # all scheduled, none left pending
        share = pool.cpus_per_worker  # type: ignore[attr-defined]
    assert share * count <= cpus and share < 1
    assert any(f"each worker reserves {share:g} CPU" in event for event in events), events


# --- Ray start-up and the command line -------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_init_ray_fails_fast_on_an_address_with_no_ray() -> None:
    """In a fresh process (no Ray yet): --address and RAY_ADDRESS, a closed port."""
    port = closed_port()
    code = (
        "import json, sys, time\n"
        "from rlkit.errors import UserError\n"
        "from rlkit.parallel import init_ray\n"
        "out = []\n"
        "for address in (sys.argv[1], None):\n"
        "    started = time.perf_counter()\n"
        "    try:\n"
        "        init_ray(address)\n"
        "        out.append(['connected', 0])\n"
        "    except UserError as error:\n"
        "        out.append([str(error), time.perf_counter() - started])\n"
        "print(json.dumps(out))\n"
    )
    env = {**cli_env(), "RAY_ADDRESS": f"127.0.0.1:{port}"}
    done = subprocess.run(
        [sys.executable, "-c", code, f"127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (flag, flag_seconds), (variable, variable_seconds) = json.loads(done.stdout)
    assert flag == (
        f"--address 127.0.0.1:{port}: cannot reach a Ray cluster there (connection refused); "
        "give host:port of a running Ray head (ray start --head) or omit --address for a "
        "local Ray"
    )
    assert variable.startswith(f"RAY_ADDRESS=127.0.0.1:{port}: cannot reach a Ray cluster")
    assert variable.endswith("or unset RAY_ADDRESS for a local Ray")
    assert "\n" not in flag + variable
    assert flag_seconds < 5 and variable_seconds < 5


def test_check_address_rejects_a_listener_that_is_not_ray() -> None:
    """Something listens but never answers like a Ray head: refused within the probe time."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.perf_counter()
        with pytest.raises(UserError, match=f"--address {address}: cannot reach a Ray cluster"):
            check_address(address)
        assert time.perf_counter() - started < PROBE_TIMEOUT_S + 2
    with pytest.raises(UserError, match="--address nonsense: not a Ray address; give host:port"):
        check_address("nonsense")


def test_workers_and_address_flags_reach_the_run_settings(tmp_path: Path) -> None:
    code = main(
        [
            "run",
            "qlearning",
            "--env",
            "FrozenLake-v1",
            "--steps",
            "200",
            "--workers",
            "3",
            "--address",
            "10.0.0.5:6379",
            "--set",
            "pool=inprocess",
            "--out-dir",
            str(tmp_path),
            "--wandb",
            "disabled",
            "--no-progress",
        ]
    )
    assert code == 0
    (config,) = tmp_path.glob("*/config.yaml")
    saved = yaml.safe_load(config.read_text())
    assert (saved["workers"], saved["address"], saved["pool"]) == (3, "10.0.0.5:6379", "inprocess")


def test_bad_workers_and_pool_values_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "qlearning", "--env", "FrozenLake-v1", "--workers", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "--workers" in error and "0 must be a positive integer" in error
    assert main(["run", "qlearning", "--env", "FrozenLake-v1", "--set", "pool=threads"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "pool" in error and "threads" in error, error
