"""Bad input that touches runs, through `python -m rlkit` subprocesses run at once in a
thread pool, and the controls that show the refusals refuse something real
(tests/bad_inputs.py says how the suites run)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from rlkit.checkpoint import list_checkpoints
from rlkit.errors import UserError
from rlkit.rundir import LOCK_FILE, RunLock
from tests.bad_inputs import (
    OLD_RUNS,
    ROOT,
    assert_user_error,
    copy_run,
    edit_config,
    fill,
    newest,
)
from tests.conftest import Bases, CliResult, cli_env, run_cli, tree_digest

# ---------------------------------------------------------------- subprocess cases


@dataclass
class Prepared:
    """A prepared subprocess case: `python -m rlkit ARGS` (through `limit`, if any)."""

    args: list[str]
    watched: Path | None = None  # must be left exactly as it was (None: `check` decides)
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    limit: str | None = None  # "fsize=N" (RLIMIT_FSIZE) or "no-dac-override" (see LAUNCH)
    expected: tuple[str, ...] = ()  # fragments known only once prepared (a pid)
    holder: subprocess.Popen[str] | None = None  # a process holding the run dir's lock


# Sets a real limit, then becomes `python -m rlkit ARGS`: RLIMIT_FSIZE makes writes past N
# bytes fail with EFBIG as a full disk fails them with ENOSPC (Python ignores SIGXFSZ);
# for root, whom file modes do not stop, dropping CAP_DAC_OVERRIDE from the bounding set
# makes a read-only folder read-only (exit 77 if the system does not allow it).
LAUNCH = """
import ctypes, os, resource, sys
mode = sys.argv[1]
if mode.startswith("fsize="):
    size = int(mode.removeprefix("fsize="))
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
elif mode == "no-dac-override" and os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            sys.exit(77)
os.execv(sys.executable, [sys.executable, "-m", "rlkit", *sys.argv[2:]])
"""

HOLD = """
import sys, time
from pathlib import Path
from rlkit.rundir import RunLock
RunLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""


def start_holder(run_dir: Path) -> subprocess.Popen[str]:
    """Another process that holds `run_dir`'s lock (RunLock, as a run does) until killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def execute(prepared: Prepared) -> CliResult:
    command = [sys.executable, "-m", "rlkit", *prepared.args]
    if prepared.limit is not None:
        command = [sys.executable, "-c", LAUNCH, prepared.limit, *prepared.args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=prepared.cwd or ROOT,
        env={**cli_env(), **prepared.env},
        timeout=300,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


MODULES = {
    "badmod.py": 'raise RuntimeError("boom at import")\n',
    "badwrap.py": 'raise RuntimeError("wrapper module broken")\n',
    "ctor_fails.py": (
        "import gymnasium as gym\n"
        "class Broken(gym.Env):\n"
        "    def __init__(self):\n"
        '        raise RuntimeError("the constructor failed")\n'
        'gym.register(id="rlkit-bad/Ctor-v0", entry_point=Broken)\n'
    ),
    "reset_fails.py": (
        "import gymnasium as gym\n"
        "class Broken(gym.Env):\n"
        "    observation_space = gym.spaces.Discrete(2)\n"
        "    action_space = gym.spaces.Discrete(2)\n"
        "    def reset(self, *, seed=None, options=None):\n"
        '        raise RuntimeError("no reset today")\n'
        'gym.register(id="rlkit-bad/Reset-v0", entry_point=Broken)\n'
    ),
}
# imported, it leaves a file `pwned` beside itself: what a planted module could do
PLANTED = "from pathlib import Path\n(Path(__file__).parent / 'pwned').write_text('x')\n"


def modules(folder: Path) -> Path:
    path = folder / "mods"
    path.mkdir()
    for name, text in MODULES.items():
        (path / name).write_text(text)
    return path


def new_run(*args: str, learns: bool = False) -> Callable[[Path, Bases], Prepared]:
    """A new run in the case's own out dir, with the test modules on PYTHONPATH. Refused
    before it starts, it leaves the out dir empty; one that `learns` first keeps its run
    dir (what `after` checks)."""

    def prepare(folder: Path, bases: Bases) -> Prepared:
        out = folder / "out"
        out.mkdir()
        return Prepared(
            [*args, "--out-dir", str(out), "--wandb", "disabled", "--no-progress"],
            watched=None if learns else out,
            env={"PYTHONPATH": str(modules(folder))},
        )

    return prepare


def on_copy(
    base: str,
    *args: str,
    damage: Callable[[Path], None] | None = None,
    cwd: str | None = None,
    env: Callable[[Path], dict[str, str]] | None = None,
) -> Callable[[Path, Bases], Prepared]:
    """A command on a copy of a session run dir (`{run}` in `args`), damaged first."""

    def prepare(folder: Path, bases: Bases) -> Prepared:
        source = getattr(bases, base, None) or OLD_RUNS / base
        run_dir = copy_run(source, folder)
        if damage is not None:
            damage(run_dir)
        where = {"run": run_dir, "parent": folder}
        return Prepared(
            [fill(arg, run=run_dir) for arg in args],
            watched=folder,
            cwd=None if cwd is None else where[cwd],
            env={} if env is None else env(folder),
        )

    return prepare


def put_checkpoint(payload: Callable[[Path], dict[str, Any]], name: str = "step-000000000001.pt"):
    """Damage: a checkpoint file `name` in the run's checkpoints/, saved as torch saves."""

    def damage(run_dir: Path) -> None:
        torch.save(payload(run_dir), run_dir / "checkpoints" / name)

    return damage


def from_newest(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], dict[str, Any]]:
    """The run's newest checkpoint, changed by `change`."""

    def payload(run_dir: Path) -> dict[str, Any]:
        saved = torch.load(newest(run_dir), weights_only=True)
        change(saved)
        return saved

    return payload


def truncate_all(run_dir: Path) -> None:
    for path in list_checkpoints(run_dir / "checkpoints"):
        path.write_bytes(path.read_bytes()[:300])


def truncate_newest(run_dir: Path) -> None:
    path = newest(run_dir)
    path.write_bytes(path.read_bytes()[:300])


PLANTED_ENTRY_POINTS = """[rlkit.agents]
plantedagent = planted:Agent

[rlkit.envs]
planted/Env-v0 = planted:Env
"""


def plant(where: str, *config: tuple[str, Any]) -> Callable[[Path], None]:
    """Damage: a module `planted`, a package `minigrid` and a distribution `planted` that
    declares an agent and an env plugin, in the run dir or beside it; and the config
    naming what `config` says."""

    def damage(run_dir: Path) -> None:
        folder = run_dir if where == "run" else run_dir.parent
        (folder / "planted.py").write_text(PLANTED)
        (folder / "minigrid").mkdir()
        (folder / "minigrid" / "__init__.py").write_text(PLANTED)
        info = folder / "planted-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: planted\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(PLANTED_ENTRY_POINTS)
        edit_config(run_dir, **dict(config))

    return damage


def held(folder: Path, bases: Bases) -> Prepared:
    run_dir = copy_run(bases.qlearning, folder)
    holder = start_holder(run_dir)
    return Prepared(
        ["run", "--resume", str(run_dir), "--steps", "30000"],
        watched=folder,
        expected=(f"(pid {holder.pid})",),
        holder=holder,
    )


def read_only_out(folder: Path, bases: Bases) -> Prepared:
    out = folder / "out"
    out.mkdir()
    out.chmod(0o555)
    args = ["run", "qlearning", "--env", "FrozenLake-v1", "--out-dir", str(out)]
    return Prepared(args, watched=folder, limit="no-dac-override")


def file_as_out(folder: Path, bases: Bases) -> Prepared:
    (folder / "out").write_text("a file")
    args = ["run", "qlearning", "--env", "FrozenLake-v1", "--out-dir", str(folder / "out")]
    return Prepared(args, watched=folder)


def full_disk_resume(folder: Path, bases: Bases) -> Prepared:
    run_dir = copy_run(bases.taxi, folder)
    args = ["run", "--resume", str(run_dir), "--steps", "6000", "--no-progress"]
    return Prepared(args, limit="fsize=12000")


def full_disk_new_run(folder: Path, bases: Bases) -> Prepared:
    out = folder / "out"
    out.mkdir()
    args = [
        "run",
        "qlearning",
        "--env",
        "Taxi-v4",
        "--steps",
        "3000",
        "--checkpoint-every",
        "1000",
        "--out-dir",
        str(out),
        "--name",
        "run",
        "--wandb",
        "disabled",
        "--no-progress",
    ]
    return Prepared(args, limit="fsize=12000")


def no_temporary_files(folder: Path) -> None:
    left = [path for path in folder.rglob("*") if path.name.endswith(".tmp")]
    assert not left, f"temporary files left: {left}"


def after_full_disk_resume(folder: Path, bases: Bases) -> None:
    run_dir = folder / "run"
    no_temporary_files(folder)
    saved = {path.name: path.read_bytes() for path in list_checkpoints(bases.taxi / "checkpoints")}
    kept = {path.name: path.read_bytes() for path in list_checkpoints(run_dir / "checkpoints")}
    assert kept == saved, "the checkpoints from before the full disk must be as they were"


def after_full_disk_new_run(folder: Path, bases: Bases) -> None:
    no_temporary_files(folder)
    assert list_checkpoints(folder / "out" / "run" / "checkpoints") == []


def after_divergence(folder: Path, bases: Bases) -> None:
    """The run dir is kept, with its metrics; every checkpoint left is finite and loads."""
    (run_dir,) = (folder / "out").iterdir()
    assert (run_dir / "metrics.jsonl").stat().st_size > 0
    no_temporary_files(folder)
    for path in list_checkpoints(run_dir / "checkpoints"):
        saved = torch.load(path, weights_only=True)
        tensors = [v for v in _leaves(saved["agent"]) if isinstance(v, torch.Tensor)]
        assert all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())
    rows = (run_dir / "metrics.jsonl").read_text()
    assert "NaN" not in rows and "Infinity" not in rows


def _leaves(tree: Any) -> Iterator[Any]:
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _leaves(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _leaves(value)
    else:
        yield tree


@dataclass(frozen=True)
class Process:
    prepare: Callable[[Path, Bases], Prepared]
    expected: tuple[str, ...]
    after: Callable[[Path, Bases], None] | None = None  # more checks of the case's folder
    started: bool = False  # it fails while learning: the run's start notes come first


def other_agent_checkpoint(run_dir: Path) -> None:
    shutil.copy(newest(OLD_RUNS / "dqn"), run_dir / "checkpoints" / "step-000000000001.pt")


def taxi_checkpoint(run_dir: Path) -> None:
    taxi = run_dir.parent.parent / "taxi-source"
    shutil.copy(newest(taxi), run_dir / "checkpoints" / "step-000000000001.pt")


CHOSEN = "{run}/checkpoints/step-000000000001.pt"
PROCESS_CASES: dict[str, Process] = {
    # modules that fail: plugin modules, env constructors and resets, wrappers
    "env-module-raises-on-import": Process(
        new_run("run", "qlearning", "--env", "badmod:X-v0"),
        ("importing module 'badmod' raised RuntimeError: boom at import", "badmod.py line 1"),
    ),
    "env-constructor-raises": Process(
        new_run("run", "qlearning", "--env", "ctor_fails:rlkit-bad/Ctor-v0"),
        ("cannot make env 'rlkit-bad/Ctor-v0': RuntimeError: the constructor failed",),
    ),
    "env-reset-raises": Process(
        new_run("run", "qlearning", "--env", "reset_fails:rlkit-bad/Reset-v0"),
        ("env 'rlkit-bad/Reset-v0' failed to reset: RuntimeError: no reset today",),
    ),
    "wrapper-module-raises-on-import": Process(
        new_run(
            "run",
            "qlearning",
            "--env",
            "FrozenLake-v1",
            "--set",
            "env_wrappers=[{wrapper: 'badwrap:W'}]",
        ),
        ("env_wrappers.0 (badwrap:W): importing module 'badwrap' raised RuntimeError",),
    ),
    # out dirs that cannot take a run dir
    "out-dir-read-only": Process(read_only_out, ("cannot create a run directory there",)),
    "out-dir-is-a-file": Process(file_as_out, ("cannot create it (File exists)",)),
    # more workers than the pool holds: refused before any starts
    "workers-ray-too-many": Process(
        new_run("run", "nes", "--env", "CartPole-v1", "--workers", "100000"),
        (
            "--workers 100000: the local Ray has this machine's",
            "(8 per CPU",
        ),
    ),
    "workers-inprocess-too-many": Process(
        new_run("run", "nes", "--env", "CartPole-v1", "--workers", "65", "--set", "pool=inprocess"),
        ("--workers 65: pool=inprocess takes at most 64 workers",),
    ),
    # eval --video of envs that cannot render frames
    "video-gridworld": Process(
        on_copy("grid", "eval", "{run}", "--video", "--episodes", "1"),
        ("--video: rlkit/GridWorld-v0 cannot render frames (its render modes: ansi",),
    ),
    "video-tmaze": Process(
        on_copy("rpg", "eval", "{run}", "--video", "--episodes", "1"),
        ("--video: rlkit/TMaze-v0 cannot render frames",),
    ),
    # checkpoints that do not fit the run
    "eval-checkpoint-of-another-agent": Process(
        on_copy(
            "qlearning", "eval", "{run}", "--checkpoint", CHOSEN, damage=other_agent_checkpoint
        ),
        ("is of agent 'dqn', not this run's 'qlearning'",),
    ),
    "resume-checkpoint-of-another-agent": Process(
        on_copy(
            "qlearning",
            "run",
            "--resume",
            "{run}",
            "--steps",
            "30000",
            "--checkpoint",
            CHOSEN,
            damage=other_agent_checkpoint,
        ),
        ("is of agent 'dqn', not this run's 'qlearning'", "give another with --checkpoint"),
    ),
    "eval-checkpoint-without-agent": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(lambda run: {"format": 1, "step": 1}),
        ),
        ("is not an rlkit checkpoint: it has no 'agent'",),
    ),
    "eval-checkpoint-step-mistyped": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved.update(step="ten"))),
        ),
        ("'step' must be a step count (got str)",),
    ),
    "eval-checkpoint-agent-mistyped": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved.update(agent=[1, 2]))),
        ),
        ("'agent' must be a mapping of the agent's state (got list)",),
    ),
    "eval-checkpoint-agent-key-missing": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved["agent"].pop("rng"))),
        ),
        ("does not fit this run's qlearning agent (KeyError: 'rng'",),
    ),
    "eval-checkpoint-table-mistyped": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            CHOSEN,
            damage=put_checkpoint(from_newest(lambda saved: saved["agent"].update(q_table="x"))),
        ),
        ("does not fit this run's qlearning agent (ValueError",),
    ),
    "eval-checkpoint-of-a-bigger-env": Process(
        on_copy("qlearning", "eval", "{run}", "--checkpoint", CHOSEN, damage=taxi_checkpoint),
        ("does not fit this run's qlearning agent", "Q-table shape (500, 6) != (16, 4)"),
    ),
    "eval-checkpoint-truncated": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            "--checkpoint",
            "{run}/checkpoints/step-000000020000.pt",
            damage=truncate_newest,
        ),
        ("is truncated or corrupted", "give another with --checkpoint: step-"),
    ),
    "eval-every-checkpoint-truncated": Process(
        on_copy("qlearning", "eval", "{run}", damage=truncate_all),
        ("none of the 3 checkpoints of", "the newest, step-000000020000.pt, is truncated"),
    ),
    "resume-every-checkpoint-truncated": Process(
        on_copy("qlearning", "run", "--resume", "{run}", "--steps", "30000", damage=truncate_all),
        ("none of the 3 checkpoints of", "loads"),
    ),
    # modules a run dir names, refused before they are imported (rlkit/trust.py)
    "eval-module-inside-run-dir": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            cwd="run",
            damage=plant("run", ("env", "planted:FrozenLake-v1")),
        ),
        (
            "names env 'planted:FrozenLake-v1': module 'planted' is found only in the current "
            "directory or beside the run dir",
            "--trust-modules",
        ),
    ),
    "eval-module-beside-run-dir": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("env", "planted:FrozenLake-v1")),
        ),
        ("module 'planted' is found only in the current directory or beside the run dir",),
    ),
    "eval-wrapper-module-inside-run-dir": Process(
        on_copy(
            "qlearning",
            "eval",
            "{run}",
            cwd="run",
            damage=plant("run", ("env_wrappers", [{"wrapper": "planted:W"}])),
        ),
        ("names env_wrappers.0 'planted:W': module 'planted'",),
    ),
    "eval-module-shadows-an-installed-one": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("env", "minigrid:MiniGrid-Empty-5x5-v0")),
        ),
        ("module 'minigrid' is shadowed: import would load", "not the installed"),
    ),
    "eval-agent-from-a-planted-distribution": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("agent", "plantedagent")),
        ),
        (
            "names agent 'plantedagent', a plugin (planted:Agent) that no package outside the "
            "run dir and the current directory declares",
        ),
    ),
    "eval-env-from-a-planted-distribution": Process(
        on_copy(
            "qlearning",
            "eval",
            "run",
            cwd="parent",
            damage=plant("parent", ("env", "planted/Env-v0")),
        ),
        ("names env 'planted/Env-v0', a plugin (planted:Env) that no package",),
    ),
    "resume-module-beside-run-dir-on-pythonpath": Process(
        on_copy(
            "qlearning",
            "run",
            "--resume",
            "{run}",
            "--steps",
            "30000",
            damage=plant("parent", ("env", "planted:FrozenLake-v1")),
            env=lambda folder: {"PYTHONPATH": str(folder)},
        ),
        ("module 'planted' is found only in the current directory or beside the run dir",),
    ),
    # a run dir another process trains in
    "resume-while-another-process-holds-it": Process(
        held, ("is in use by another rlkit process", "wait for it to end")
    ),
    # a full disk (RLIMIT_FSIZE: writes past 12 kB fail; a Taxi checkpoint is 24 kB)
    "checkpoint-write-fails-on-resume": Process(
        full_disk_resume,
        (
            "cannot write checkpoint",
            "(File too large)",
            "step-000000003000.pt is kept",
            "rlkit run --resume",
        ),
        after=after_full_disk_resume,
        started=True,
    ),
    "checkpoint-write-fails-on-a-new-run": Process(
        full_disk_new_run,
        ("cannot write checkpoint", "(File too large)", "no earlier checkpoint exists"),
        after=after_full_disk_new_run,
        started=True,
    ),
    # learning that goes non-finite
    "qlearning-diverges": Process(
        new_run(
            "run",
            "qlearning",
            "--env",
            "FrozenLake-v1",
            "--steps",
            "4000",
            "--checkpoint-every",
            "500",
            "--set",
            "initial_value=1e300",
            "--set",
            "learning_rate={kind: exponential, start: 1e-300, end: 1e300}",
            learns=True,
        ),
        (
            "training diverged at step",
            "likely settings: learning_rate.start=1e-300, initial_value=1e+300",
            "the last good checkpoint, checkpoints/step-",
        ),
        after=after_divergence,
        started=True,
    ),
    "dqn-loss-goes-nan": Process(
        new_run(
            "run",
            "dqn",
            "--env",
            "CartPole-v1",
            "--steps",
            "3000",
            "--checkpoint-every",
            "100",
            "--log-every",
            "500",
            "--set",
            "learning_rate=1e12",
            "--set",
            "learning_starts=200",
            "--set",
            "threads=1",
            learns=True,
        ),
        (
            "training diverged at step",
            "likely settings: learning_rate=1e+12",
            "the last good checkpoint, checkpoints/step-",
        ),
        after=after_divergence,
        started=True,
    ),
}


@pytest.fixture(scope="session")
def outcomes(
    bases: Bases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[CliResult, dict[str, str] | None, Prepared, Path]]]:
    """Every subprocess case, prepared here and run at once in a thread pool."""
    root = tmp_path_factory.mktemp("process-cases")
    shutil.copytree(bases.taxi, root / "taxi-source")
    prepared: dict[str, tuple[Prepared, dict[str, str] | None, Path]] = {}
    try:
        for case, spec in PROCESS_CASES.items():
            folder = root / case
            folder.mkdir()
            ready = spec.prepare(folder, bases)
            before = None if ready.watched is None else tree_digest(ready.watched)
            prepared[case] = (ready, before, folder)
        with ThreadPoolExecutor(max_workers=(os.cpu_count() or 1) + 1) as pool:
            futures = {
                case: pool.submit(execute, ready) for case, (ready, _, _) in prepared.items()
            }
            results = {case: future.result() for case, future in futures.items()}
        yield {
            case: (results[case], before, ready, folder)
            for case, (ready, before, folder) in prepared.items()
        }
    finally:
        for ready, _, _ in prepared.values():
            if ready.holder is not None:
                ready.holder.kill()
                ready.holder.wait()


@pytest.mark.parametrize("case", sorted(PROCESS_CASES))
@pytest.mark.slow
def test_refused_in_a_real_process(case: str, outcomes: dict[str, Any], bases: Bases) -> None:
    result, before, prepared, folder = outcomes[case]
    if result.returncode == 77 and prepared.limit == "no-dac-override":
        pytest.skip("this system does not let root drop CAP_DAC_OVERRIDE")
    spec = PROCESS_CASES[case]
    assert_user_error(result, *spec.expected, *prepared.expected, started=spec.started)
    if prepared.watched is not None:
        assert tree_digest(prepared.watched) == before, "the refused command changed files"
    assert not list(folder.rglob("pwned")), "a module the run dir named was imported"
    if spec.after is not None:
        spec.after(folder, bases)


# ---------------------------------------------------------------- controls
# What shows that the refusals above refuse something real.


def test_the_lock_goes_with_its_holder_even_after_kill_9(bases: Bases, tmp_path: Path) -> None:
    run_dir = copy_run(bases.qlearning, tmp_path)
    holder = start_holder(run_dir)
    try:
        with pytest.raises(
            UserError, match=rf"in use by another rlkit process \(pid {holder.pid}\)"
        ):
            RunLock.acquire(run_dir)
    finally:
        holder.kill()  # SIGKILL: no handler runs, the OS drops the lock
        holder.wait()
    RunLock.acquire(run_dir).release()
    assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_trust_modules_imports_what_the_run_dir_names(bases: Bases, tmp_path: Path) -> None:
    """The module refused in `eval-module-inside-run-dir` is real: with --trust-modules,
    eval imports it (it leaves its marker) and evaluates the run."""
    run_dir = copy_run(bases.qlearning, tmp_path)
    (run_dir / "planted.py").write_text(PLANTED)
    edit_config(run_dir, env="planted:FrozenLake-v1")
    done = run_cli("eval", str(run_dir), "--episodes", "2", "--trust-modules", cwd=run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (run_dir / "pwned").exists()
    assert "2 episodes: return mean" in done.stdout


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_is_skipped_and_kept(bases: Bases, tmp_path: Path) -> None:
    """--resume falls back to the newest checkpoint that loads, says why it skipped the
    newer one, and keeps it aside (renamed) where neither pruning nor loading will meet it."""
    run_dir = copy_run(bases.qlearning, tmp_path)
    damaged = newest(run_dir)
    damaged.write_bytes(damaged.read_bytes()[:300])
    previous = list_checkpoints(run_dir / "checkpoints")[-2]
    done = run_cli("eval", str(run_dir), "--episodes", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"skipped checkpoints/{damaged.name}: it is truncated or corrupted" in done.stderr
    assert damaged.exists(), "eval changes nothing in the run dir"
    done = run_cli("run", "--resume", str(run_dir), "--steps", "22000", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"kept as {damaged.name}.damaged" in done.stderr
    assert f"from step {int(previous.stem.split('-')[1])} ({previous.name})" in done.stderr
    assert (damaged.parent / f"{damaged.name}.damaged").is_file()
    assert newest(run_dir).name == "step-000000022000.pt"


@pytest.mark.slow
def test_a_second_resume_of_a_running_run_is_refused(bases: Bases, tmp_path: Path) -> None:
    """Two real `--resume`s of one run dir: the second is refused, naming the first's pid,
    and the first goes on writing the one metrics file (before: both ran, and one wrote
    to a file the other had replaced)."""
    run_dir = copy_run(bases.qlearning, tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "rlkit", "run", "--resume", str(run_dir), "--steps", "5000000",
         "--no-progress"],
        env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        lock = run_dir / LOCK_FILE
        while time.monotonic() < deadline and not (
            lock.is_file() and lock.read_text().strip() == str(first.pid)
        ):
            assert first.poll() is None, first.communicate()[1][-2000:]
            time.sleep(0.1)
        second = run_cli("run", "--resume", str(run_dir), "--steps", "6000000")
        assert_user_error(second, f"is in use by another rlkit process (pid {first.pid})")
    finally:
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").open()]
    assert steps == sorted(steps) and steps[-1] > 20_000
