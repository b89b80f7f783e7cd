"""A run directory: made once per run, with `config.yaml` (the resolved config) and
`run.json` (what ran: versions, git commit, seeds, command) beside its checkpoints."""

from __future__ import annotations

import errno
import fcntl
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import rlkit
from rlkit.errors import UserError, shorten
from rlkit.safefiles import open_no_follow, refuse_links, replace_text
from rlkit.settings import RunSettings

CONFIG_FILE = "config.yaml"
RECORD_FILE = "run.json"
LOCK_FILE = "run.lock"
# what rlkit keeps in a run dir (`refuse_links` checks them before a resume changes any)
RUN_FILES = (CONFIG_FILE, RECORD_FILE, LOCK_FILE, "metrics.jsonl")
RUN_FOLDERS = ("checkpoints", "replay", "logs", "videos", "wandb")


def check_run_dir_links(run_dir: Path) -> None:
    """One line if any file or folder rlkit keeps in `run_dir` is a symlink (or a folder
    is not a folder): a resume refuses it before anything changes."""
    refuse_links(run_dir, RUN_FILES, RUN_FOLDERS)


RECORDED_PACKAGES = ("numpy", "gymnasium", "ale-py", "torch", "pydantic", "wandb", "ray")


def create_run_dir(settings: RunSettings, env_id: str) -> Path:
    """`<out_dir>/<name>`, or `<out_dir>/<agent>-<env>-<date>-<time>[-k]`, made new."""
    base = Path(settings.out_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = settings.name or f"{settings.agent}-{env_id.replace('/', '-')}-{stamp}"
    if settings.name is None:
        name = name[:200]  # a long env id must not make the name too long for the file system
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"--out-dir {shorten(base)}: cannot create it ({error.strerror}); "
            "give a folder you can write to"
        ) from None
    if not base.is_dir():
        raise UserError(f"--out-dir {shorten(base)} is not a folder; give a folder for run dirs")
    for attempt in range(1, 1000):
        candidate = base / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            if settings.name is not None:
                raise UserError(
                    f"--name {shorten(settings.name)}: '{shorten(candidate, 200)}' already "
                    "exists; choose another name or continue it with --resume"
                ) from None
            continue
        except OSError as error:
            raise UserError(
                f"--out-dir {shorten(base)}: cannot create a run directory there "
                f"({error.strerror}); give a folder you can write to"
            ) from None
        return candidate
    raise UserError(f"cannot create a run directory under '{shorten(base)}'")


class RunLock:
    """A run dir held by the one process that trains in it: `fcntl.flock` on `run.lock`.

    Taken when a run dir is made, and by `--resume` before it changes anything; held for
    the run's life. The OS drops the lock when the process ends, however it ends (kill -9
    included), so a stale lock cannot exist. The file holds the holder's pid, which a
    second process, refused, names.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, run_dir: Path, name: str = LOCK_FILE, what: str = "run dir") -> RunLock:
        """Hold `run_dir/name` (a seed group holds `group.lock` in its group dir)."""
        path = run_dir / name
        try:
            fd = open_no_follow(path, os.O_RDWR | os.O_CREAT)
        except OSError as error:
            raise UserError(
                f"cannot lock {what} '{shorten(run_dir, 200)}' ({name}: {error.strerror}); "
                f"give a {what} you can write to"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(
                    f"cannot lock {what} '{shorten(run_dir, 200)}' ({error.strerror}); "
                    "its file system must support file locks"
                ) from None
            who = f"pid {holder}" if holder.isdigit() else "pid unknown"
            raise UserError(
                f"{what} '{shorten(run_dir, 200)}' is in use by another rlkit process ({who}); "
                "wait for it to end, or stop it, then try again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        """Give the run dir up (closing the file drops the lock); later calls do nothing."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def write_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a fresh temporary file, then a rename; nothing
    planted in the dir, a symlink included, is written through)."""
    replace_text(path, text)


def _git_commit() -> str | None:
    source = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def run_record(seeds: dict[str, int], resolved: dict[str, Any]) -> dict[str, Any]:
    """`run.json`: what ran, for anyone reading the run dir later."""
    versions = {}
    for package in RECORDED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "rlkit_version": rlkit.__version__,
        "git_commit": _git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "seeds": seeds,
        "command": sys.argv,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": resolved,
    }
