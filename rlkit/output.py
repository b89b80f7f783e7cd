"""Where a trial's or a seed's output goes: a log file in its sweep or group dir.

    send_output_to(group_dir / "logs" / "seed-3.log")   # in a Ray actor: for good
    with output_to(log_file):                           # in this process: for a while
        train(...)

A sweep or a seed group prints rlkit's own lines on the terminal (a start and an end line
per trial or seed, the final table) and nothing else on success. Everything a trial's or
a seed's process writes (rlkit's per-run lines, warnings, a traceback, Ray's and Tune's
messages from inside the actor, W&B's writer) goes to its log file instead, at the file
descriptor level, so the output of C code and of child processes goes there too. A real
error still reaches the terminal: the sweep or group prints it in one line, naming the
log file.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rlkit.errors import UserError
from rlkit.safefiles import link_message, open_no_follow

LOGS_DIR = "logs"


def _open_log(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.is_symlink():
        raise UserError(link_message(path.parent))
    return open_no_follow(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)


def send_output_to(path: Path) -> None:
    """From now on, this process's stdout and stderr (file descriptors 1 and 2) go to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    descriptor = _open_log(path)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    os.close(descriptor)


@contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Inside, this process's stdout and stderr go to `path`; after, where they went."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    descriptor = _open_log(path)
    try:
        os.dup2(descriptor, 1)
        os.dup2(descriptor, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for handle in (*saved, descriptor):
            os.close(handle)
