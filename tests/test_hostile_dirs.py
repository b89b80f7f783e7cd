"""Run and group dirs from elsewhere (issue: hostile run dirs): a symlink where rlkit
keeps its own file or folder, a group config naming untrusted modules, a recorded Ray
address, and two processes on one group. Each through the real CLI: one line, exit 2,
nothing outside the dir written, truncated or deleted."""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlkit.group import read_group
from rlkit.training import TrainResult
from tests.bad_inputs import run_main
from tests.conftest import cli_env, run_cli, tree_digest
from tests.test_cli_errors import assert_user_error

VICTIM_TEXT = "precious\n"


@pytest.fixture()
def run_copy(small_run: TrainResult, tmp_path: Path) -> Path:
    """A copy of a finished 20,000-step Q-learning run, and a victim file beside it."""
    run_dir = tmp_path / "runs" / "r"
    shutil.copytree(small_run.run_dir, run_dir)
    (tmp_path / "victim.txt").write_text(VICTIM_TEXT)
    return run_dir


def resume(run_dir: Path, *extra: str) -> object:
    steps = () if "--steps" in extra else ("--steps", "25000")
    return run_cli("run", "--resume", str(run_dir), *steps, "--wandb", "disabled",
                   "--no-progress", *extra)  # fmt: skip


@pytest.mark.parametrize("name", ["run.lock", "metrics.jsonl", "run.json", "config.yaml"])
def test_a_symlinked_file_in_a_run_dir_is_refused_and_its_target_kept(
    run_copy: Path, name: str
) -> None:
    victim = run_copy.parents[1] / "victim.txt"
    entry = run_copy / name
    entry.unlink(missing_ok=True)
    entry.symlink_to(victim)
    before = tree_digest(run_copy)
    assert_user_error(resume(run_copy), f"{name}' is a symbolic link", "remove the link")
    assert victim.read_text() == VICTIM_TEXT
    assert tree_digest(run_copy) == before


@pytest.mark.parametrize("name", ["checkpoints", "replay", "logs"])
def test_a_symlinked_folder_in_a_run_dir_is_refused_and_its_files_kept(
    run_copy: Path, name: str
) -> None:
    other = run_copy.parents[1] / "other"
    other.mkdir()
    for index in range(5):  # what pruning or a replay reset would delete
        (other / f"step-{index}.pt").write_text("x")
        (other / f"{index}.npy").write_text("x")
    if (run_copy / name).is_dir():
        shutil.copytree(run_copy / name, other, dirs_exist_ok=True)
        shutil.rmtree(run_copy / name)
    (run_copy / name).symlink_to(other, target_is_directory=True)
    before = tree_digest(other)
    assert_user_error(resume(run_copy), f"{name}' is a symbolic link")
    assert tree_digest(other) == before


def test_a_planted_temporary_name_is_never_written_through(run_copy: Path) -> None:
    victim = run_copy.parents[1] / "victim.txt"
    for name in (".config.yaml.tmp", ".run.json.tmp", "metrics.tmp", ".metrics.jsonl.tmp"):
        (run_copy / name).symlink_to(victim)
    done = resume(run_copy)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == VICTIM_TEXT


@pytest.mark.slow
def test_a_recorded_ray_address_is_not_contacted_without_being_asked(tmp_path: Path) -> None:
    made = run_cli("run", "trpo", "--env", "CartPole-v1", "--steps", "512", "--wandb",
                   "disabled", "--out-dir", str(tmp_path), "--name", "t", "--set",
                   "pool=inprocess", "--set", "steps_per_worker=128")  # fmt: skip
    assert made.returncode == 0, made.stderr
    run_dir = tmp_path / "t"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    # a Ray pool on a cluster nothing answers at (TEST-NET-3): used, the resume would fail
    config.update(address="203.0.113.9:6379", pool="ray", workers=1)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    done = resume(run_dir, "--steps", "768")
    assert done.returncode == 0, done.stderr
    assert "recorded Ray address 203.0.113.9:6379; not used (give --address" in done.stderr
    assert "started a local Ray" in done.stderr


@pytest.fixture(scope="module")
def made_group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-seed Q-learning group (in-process, 2,000 steps a seed), made once."""
    out = tmp_path_factory.mktemp("groups")
    made = run_cli("run", "qlearning", "--env", "FrozenLake-v1", "--seeds", "0-1", "--steps",
                   "2000", "--wandb", "disabled", "--out-dir", str(out), "--name", "g",
                   "--set", "pool=inprocess", "--final-episodes", "2")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out / "g"


@pytest.fixture()
def group_dir(made_group: Path, tmp_path: Path) -> Path:
    """A copy of the finished group for one test."""
    copy = tmp_path / "groups" / "g"
    shutil.copytree(made_group, copy)
    return copy


def unstart_seed(group: Path, seed: int) -> None:
    """Mark a seed not started, as a group interrupted before it ran."""
    import json

    record = json.loads((group / "group.json").read_text())
    record["runs"][str(seed)] = {"status": "not started"}
    (group / "group.json").write_text(json.dumps(record))
    shutil.rmtree(group / f"seed-{seed}")


@pytest.mark.slow
def test_a_group_config_naming_an_untrusted_module_is_refused(group_dir: Path) -> None:
    unstart_seed(group_dir, 1)
    config = yaml.safe_load((group_dir / "config.yaml").read_text())
    config["env"] = "os:abort:Nope-v0"
    (group_dir / "config.yaml").write_text(yaml.safe_dump(config))
    before = tree_digest(group_dir)
    done = run_cli("run", "--resume", str(group_dir), "--wandb", "disabled")
    assert_user_error(done, "os", "--trust-modules")
    assert tree_digest(group_dir) == before


@pytest.mark.slow
def test_a_symlink_in_a_group_dir_is_refused(group_dir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    (group_dir / "summary.json").unlink()
    (group_dir / "summary.json").symlink_to(victim)
    done = run_cli("run", "--resume", str(group_dir), "--wandb", "disabled")
    assert_user_error(done, "summary.json' is a symbolic link")
    assert victim.read_text() == VICTIM_TEXT


@pytest.mark.slow
def test_one_process_per_group_dir(group_dir: Path) -> None:
    unstart_seed(group_dir, 1)
    fd = os.open(group_dir / "group.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, b"4242\n", 0)
        before = tree_digest(group_dir)
        done = run_cli("run", "--resume", str(group_dir), "--wandb", "disabled")
        assert_user_error(done, "group dir", "is in use by another rlkit process (pid 4242)")
        assert tree_digest(group_dir) == before
    finally:
        os.close(fd)
    again = run_cli("run", "--resume", str(group_dir), "--wandb", "disabled")
    assert again.returncode == 0, again.stderr


def _tamper(key: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        *parents, last = key.split(".")
        place = record
        for part in parents:
            place = place[part]
        place[last] = value

    return change


# group.json fields changed by hand: (what is changed, the field the line names)
TAMPERED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "runs-as-a-list": (_tamper("runs", []), "runs: Input should be a valid dictionary"),
    "seconds-as-a-string": (_tamper("runs.0.seconds", "1 s"), "runs.0.seconds"),
    "seconds-negative": (_tamper("runs.0.seconds", -1.0), "runs.0.seconds"),
    "steps-infinity": (_tamper("steps", float("inf")), "steps"),
    "steps-zero": (_tamper("steps", 0), "steps"),
    "seed-10-to-the-300": (_tamper("seeds", [10**300, 1]), "seeds.0"),
    "seed-negative": (_tamper("seeds", [-1, 1]), "seeds.0"),
    "status-a-number": (_tamper("runs.0.status", 7), "runs.0.status"),
    "status-unknown": (_tamper("runs.0.status", "done"), "runs.0.status"),
    "step-negative": (_tamper("runs.0.step", -5), "runs.0.step"),
    "final-a-string": (_tamper("runs.0.final", "good"), "runs.0.final"),
    "final-mean-a-string": (_tamper("runs.0.final.mean", "high"), "runs.0.final.mean"),
    "final-episodes-negative": (_tamper("runs.0.final.episodes", -1), "runs.0.final.episodes"),
    "sessions-a-string": (_tamper("sessions", "many"), "sessions"),
    "name-a-number": (_tamper("name", 5), "name"),
    "agent-a-list": (_tamper("agent", ["trpo"]), "agent"),
    "parallel-unknown": (_tamper("parallel", "threads"), "parallel"),
    "format-2": (_tamper("format", 2), "format"),
    "run-key-not-a-seed": (_tamper("runs.abc", {"status": "finished"}), "runs: 'abc'"),
    "address-a-number": (_tamper("address", 6379), "address"),
    "not-an-object": (lambda record: record.clear(), "not a JSON object"),
}


def test_group_records_rlkit_wrote_are_read_as_written(group_dir: Path) -> None:
    """A final evaluation with a field a newer rlkit may add, and a NaN mean (an env could
    return NaN before envs were checked): read, not refused."""
    record = json.loads((group_dir / "group.json").read_text())
    record["runs"]["0"]["final"].update(mean=float("nan"), iqm=1.0)
    record["runs"]["0"]["note"] = "from a newer rlkit"
    (group_dir / "group.json").write_text(json.dumps(record))
    group = read_group(group_dir)
    final = group.records[0].final
    assert final is not None and math.isnan(final["mean"]) and final["iqm"] == 1.0


@pytest.mark.parametrize("case", sorted(TAMPERED))
@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_tampered_group_record_is_one_line_naming_the_field(
    case: str, command: str, group_dir: Path
) -> None:
    change, fragment = TAMPERED[case]
    record = json.loads((group_dir / "group.json").read_text())
    change(record)
    (group_dir / "group.json").write_text(json.dumps(record if record else [1]))
    before = tree_digest(group_dir)
    args = ["eval", str(group_dir)] if command == "eval" else ["run", "--resume", str(group_dir)]
    done = run_main(*args)
    assert_user_error(done, f"'{group_dir / 'group.json'}' is damaged", fragment)
    assert tree_digest(group_dir) == before


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_in_a_seed_falls_back_to_the_newest_that_loads(
    group_dir: Path,
) -> None:
    """As a single run does: `rlkit eval GROUP` and `--resume GROUP` use the newest
    checkpoint of the seed that loads; the seed is not failed, its step not reset."""
    checkpoints = group_dir / "seed-0" / "checkpoints"
    (good,) = sorted(checkpoints.glob("step-*.pt"))
    (checkpoints / "step-000000999999.pt").write_bytes(good.read_bytes()[:300])
    evaluated = run_cli("eval", str(group_dir), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "skipped checkpoints/step-000000999999.pt" in evaluated.stderr
    seeds = {row["seed"]: row for row in json.loads(evaluated.stdout)["seeds"]}
    assert seeds[0]["step"] == 2000 and seeds[0]["return"] is not None
    record = json.loads((group_dir / "group.json").read_text())
    record["runs"]["0"].update(status="interrupted", final=None)
    (group_dir / "group.json").write_text(json.dumps(record))
    resumed = run_cli("run", "--resume", str(group_dir), "--wandb", "disabled")
    assert resumed.returncode == 0, resumed.stderr
    seed = json.loads((group_dir / "group.json").read_text())["runs"]["0"]
    assert (seed["status"], seed["step"]) == ("finished", 2000)
    assert seed["final"] is not None and seed["error"] is None


def test_a_fifo_given_as_a_config_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    done = run_cli("run", "--config", str(fifo), timeout=60)
    assert_user_error(done, "is not a regular file (a FIFO, socket or device)")


def test_a_fifo_as_a_group_config_is_refused_not_waited_on(group_dir: Path) -> None:
    (group_dir / "config.yaml").unlink()
    os.mkfifo(group_dir / "config.yaml")
    done = run_cli("run", "--resume", str(group_dir), "--wandb", "disabled", timeout=60)
    assert_user_error(done, "config.yaml' is not a regular file")
    done = run_cli("eval", str(group_dir), timeout=60)
    assert_user_error(done, "config.yaml' is not a regular file")


def test_a_fifo_as_a_run_s_metrics_is_refused_by_plot(run_copy: Path, tmp_path: Path) -> None:
    (run_copy / "metrics.jsonl").unlink()
    os.mkfifo(run_copy / "metrics.jsonl")
    done = run_cli("plot", str(run_copy), "-o", str(tmp_path / "c.png"), timeout=60)
    assert_user_error(done, "metrics.jsonl' cannot be read (not a regular file")
    assert not (tmp_path / "c.png").exists()


def test_a_group_record_of_more_seeds_than_a_group_may_have_is_refused(group_dir: Path) -> None:
    import json

    record = json.loads((group_dir / "group.json").read_text())
    record["seeds"] = list(range(5_000))
    record["runs"] = {str(seed): {"status": "not started"} for seed in range(5_000)}
    (group_dir / "group.json").write_text(json.dumps(record))
    before = tree_digest(group_dir)
    for command in (("run", "--resume"), ("eval",)):
        done = run_cli(*command, str(group_dir), timeout=60)
        assert_user_error(done, "group.json' is damaged", "more than 1000 seeds")
    assert tree_digest(group_dir) == before


@pytest.fixture(scope="module")
def endless_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1,000-step Q-learning run on an env whose episodes never end."""
    out = tmp_path_factory.mktemp("endless")
    made = run_cli("run", "qlearning", "--env", "tests.endless_envs:Endless-v0", "--steps",
                   "1000", "--wandb", "disabled", "--out-dir", str(out), "--name", "e",
                   "--no-progress")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return out / "e"


def test_evaluation_cuts_episodes_of_an_env_without_a_time_limit(endless_run: Path) -> None:
    import json

    done = run_cli("eval", str(endless_run), "--episodes", "2", "--json", "--trust-modules",
                   "--max-episode-steps", "300", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mean_length"] == 300
    done = run_cli("eval", str(endless_run), "--episodes", "1", "--json", "--trust-modules",
                   timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mean_length"] == 100_000  # DEFAULT_MAX_EPISODE_STEPS


@pytest.mark.slow
def test_an_endless_episode_s_video_is_streamed_and_ctrl_c_stops_it(endless_run: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import cli_env

    done = run_cli("eval", str(endless_run), "--episodes", "1", "--video", "--trust-modules",
                   "--max-episode-steps", "200", timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (video,) = (endless_run / "videos").iterdir()
    assert video.suffix == ".mp4" and video.stat().st_size > 0
    endless = subprocess.Popen(
        [sys.executable, "-m", "rlkit", "eval", str(endless_run), "--episodes", "1", "--video",
         "--trust-modules", "--max-episode-steps", "1000000000"],
        stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 120  # start-up takes seconds, more on a loaded machine
    while not list((endless_run / "videos").glob(".eval-step-*.mp4")):  # the video's temp
        assert time.monotonic() < deadline and endless.poll() is None, "the video never began"
        time.sleep(0.2)
    time.sleep(2)  # into the episode, frames streaming
    endless.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = endless.communicate(timeout=30)
    assert time.monotonic() - started < 5, "Ctrl-C stops the evaluation within seconds"
    assert endless.returncode == 130 and "rlkit: interrupted" in err, err
    assert [path.name for path in (endless_run / "videos").iterdir()] == [video.name]


@pytest.mark.parametrize("agent", ["qlearning", "dqn", "a3c", "trpo", "rpg", "nes"])
def test_every_agent_stops_at_its_step_total_on_an_endless_env(agent: str, tmp_path: Path) -> None:
    import rlkit

    result = rlkit.train(agent, env="tests.endless_envs:Endless-v0", steps=600, seed=0,
                         out_dir=str(tmp_path), wandb="disabled", progress=False,
                         pool="inprocess", threads=1)  # fmt: skip
    assert result.step == 600


def test_a_network_too_big_for_memory_is_one_line_and_leaves_no_run_dir(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    done = run_cli("run", "a3c", "--env", "CartPole-v1", "--set", "mlp_hidden=[100000,100000]",
                   "--set", "pool=inprocess", "--steps", "100", "--wandb", "disabled",
                   "--out-dir", str(out))  # fmt: skip
    assert_user_error(done, "a3c: its networks or tables do not fit", "40 GB asked at once")
    assert not any(out.iterdir())


@pytest.mark.parametrize(
    ("env", "pool", "message"),
    [
        ("Raises-v0", "inprocess", "raised in step() after 50 steps: ValueError: physics exploded"),
        ("Raises-v0", "ray", "raised in step() after 50 steps: ValueError: physics exploded"),
        ("WrongShape-v0", "inprocess", "shape (5,); its observation space declares (3,)"),
        ("OldApi-v0", "inprocess", "step() returned 4 values; Gymnasium's API returns 5"),
        ("BareReset-v0", "inprocess", "reset() returned a ndarray, not a tuple"),
        ("NanReward-v0", "inprocess", "returned the reward nan in step() after 30 steps"),
        ("InfObservation-v0", "inprocess", "step() after 30 steps returned an observation "
         "holding NaN"),
    ],
)  # fmt: skip
@pytest.mark.slow
def test_an_env_that_breaks_the_api_is_one_line_naming_it(
    env: str, pool: str, message: str, tmp_path: Path
) -> None:
    done = run_cli("run", "trpo", "--env", f"tests.misbehaving_envs:{env}", "--steps", "300",
                   "--set", f"pool={pool}", "--set", "steps_per_worker=64", "--wandb",
                   "disabled", "--out-dir", str(tmp_path), "--no-progress")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"rlkit: env '{env}'") and message in last, last


@pytest.mark.slow
def test_ray_workers_of_a_resumed_run_do_not_import_from_the_current_directory(
    tmp_path: Path,
) -> None:
    """The console script has no current directory on `sys.path`, so the learner's trust
    check finds the installed MiniGrid; Ray puts the current directory first on its
    workers' path, where a planted `minigrid/` would have run in every worker."""
    rlkit = str(Path(sys.executable).with_name("rlkit"))
    run = [rlkit, "run", "trpo", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "1024", "--set",
           "pool=ray", "--set", "workers=2", "--set", "steps_per_worker=256", "--wandb",
           "disabled", "--out-dir", "runs", "--name", "r", "--no-progress"]  # fmt: skip
    made = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                          timeout=300, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    planted = tmp_path / "minigrid"
    planted.mkdir()
    (planted / "__init__.py").write_text(
        f"from pathlib import Path\nPath({str(tmp_path / 'pwned')!r}).write_text('x')\n"
    )
    resume = [rlkit, "run", "--resume", "runs/r", "--steps", "1536", "--wandb", "disabled",
              "--no-progress"]  # fmt: skip
    resumed = subprocess.run(resume, capture_output=True, text=True, cwd=tmp_path,
                             env=cli_env(), timeout=300, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "2 ray workers" in resumed.stderr
    assert not (tmp_path / "pwned").exists(), "a planted package ran in a Ray worker"


def _launch(limit: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m rlkit ARGS` under a real limit (test_bad_inputs_process.LAUNCH)."""
    from tests.test_bad_inputs_process import LAUNCH

    return subprocess.run([sys.executable, "-c", LAUNCH, limit, *args], capture_output=True,
                          text=True, cwd=cwd, env=cli_env(), timeout=300, check=False)  # fmt: skip


GROUP = ("run", "qlearning", "--env", "FrozenLake-v1", "--steps", "100", "--seeds", "0-1",
         "--wandb", "disabled", "--set", "pool=inprocess")  # fmt: skip


@pytest.mark.slow
def test_a_group_in_a_read_only_out_dir_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    done = _launch("no-dac-override", *GROUP, "--out-dir", str(out), cwd=tmp_path)
    if done.returncode == 77:
        pytest.skip("this system does not let a process drop CAP_DAC_OVERRIDE")
    assert_user_error(done, f"--out-dir {out}: cannot create", "(Permission denied)")
    assert not any(out.iterdir())


@pytest.mark.slow
def test_a_full_disk_while_writing_group_json_is_one_line_and_keeps_the_record(
    tmp_path: Path,
) -> None:
    """Writes past 1,200 bytes fail as on a full disk: the seed's run dir cannot be made,
    then group.json cannot be rewritten; the last whole group.json is kept."""
    done = _launch("fsize=1200", *GROUP, "--out-dir", str(tmp_path), "--name", "g", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"rlkit: cannot write '{tmp_path / 'g' / 'group.json'}' (File too large)"
    )
    assert f"continue with: rlkit run --resume {tmp_path / 'g'}" in last
    record = json.loads((tmp_path / "g" / "group.json").read_text())
    assert record["seeds"] == [0, 1] and set(record["runs"]) == {"0", "1"}  # whole, as saved
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_an_env_that_fails_to_render_for_video_is_one_line_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    made = run_cli("run", "trpo", "--env", "tests.misbehaving_envs:RenderRaises-v0", "--steps",
                   "128", "--set", "pool=inprocess", "--set", "steps_per_worker=64", "--wandb",
                   "disabled", "--out-dir", str(tmp_path), "--name", "r")  # fmt: skip
    assert made.returncode == 0, made.stderr
    done = run_cli("eval", str(tmp_path / "r"), "--video", "--episodes", "1", "--trust-modules")
    assert_user_error(done, "env 'RenderRaises-v0' failed to render a frame after 0 steps",
                      "RuntimeError: no display")  # fmt: skip
    assert not any((tmp_path / "r" / "videos").iterdir())


@pytest.mark.slow
def test_the_ray_seed_processes_of_a_resumed_group_do_not_import_from_the_current_directory(
    tmp_path: Path,
) -> None:
    """As for a run's workers: each seed of a group runs in a Ray process of its own, whose
    path Ray starts with the current directory."""
    rlkit = str(Path(sys.executable).with_name("rlkit"))
    group = [rlkit, "run", "trpo", "--env", "MiniGrid-Empty-5x5-v0", "--steps", "256", "--seeds",
             "0", "--set", "steps_per_worker=128", "--wandb", "disabled", "--out-dir", "groups",
             "--name", "g", "--final-episodes", "2"]  # fmt: skip
    made = subprocess.run(group, capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                          timeout=300, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    unstart_seed(tmp_path / "groups" / "g", 0)
    planted = tmp_path / "minigrid"
    planted.mkdir()
    (planted / "__init__.py").write_text(
        f"from pathlib import Path\nPath({str(tmp_path / 'pwned')!r}).write_text('x')\n"
    )
    resume = [rlkit, "run", "--resume", "groups/g", "--wandb", "disabled"]
    resumed = subprocess.run(resume, capture_output=True, text=True, cwd=tmp_path,
                             env=cli_env(), timeout=300, check=False)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "on Ray" in made.stderr and "seed 0 finished" in resumed.stderr
    assert not (tmp_path / "pwned").exists(), "a planted package ran in a seed's Ray process"


@pytest.mark.slow
def test_a_full_disk_before_the_group_record_is_one_line_and_leaves_no_dir(
    tmp_path: Path,
) -> None:
    done = _launch("fsize=300", *GROUP, "--out-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert_user_error(done, "cannot write the group dir", "(File too large)")
    assert not any((tmp_path / "out").iterdir())
