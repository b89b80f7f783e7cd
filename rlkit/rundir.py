"""A run directory: made once per run, with `config.yaml` (the resolved config) and
`run.json` (what ran: versions, git commit, seeds, command) beside its checkpoints."""

from __future__ import annotations

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
from rlkit.settings import RunSettings

CONFIG_FILE = "config.yaml"
RECORD_FILE = "run.json"
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


def write_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


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
