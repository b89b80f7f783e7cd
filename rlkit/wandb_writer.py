"""A run's W&B run, kept by a child process: the training process never imports wandb.

    writer = WandbWriter(run_dir, mode="offline", config=config)   # starts the child
    writer.log({"episode/return": 7.9, "episode/count": 41.0}, step=12_000)
    writer.close()             # the child finishes the W&B run; waited for

What W&B costs a run, measured on the 2-core project VM (benchmarks/RESULTS.md): importing
wandb about 1 s, `wandb.init` about 1 s (it starts W&B's service process), and about
0.6 ms of Python per `run.log` row. In the training process all of it is added to the
run's wall-clock (a short Q-learning run on Taxi took 2.3x as long with W&B offline). In
this child, started when the logger is, the import and the start overlap the training, and
a row costs the training process one JSON line written to a pipe. The logger also sends
fewer rows (`rlkit.logger`: training episodes go as aggregates, at most one row a second).

The child reads one JSON line to start (`wandb.init` arguments), then one per row, then
`{"finish": exit_code}`; it finishes the W&B run when that comes or when its input ends
(the run's process died: exit code 1), stops W&B's service and exits at once (the
interpreter's own shutdown, half a second with wandb loaded, would add to every run). It
ignores SIGINT and SIGTERM, which a terminal sends to the whole process group: the run's
process handles them and closes the writer, so the W&B run is finished once, with every
row. If W&B cannot start, the child prints one
line and exits, and the run goes on without W&B (`metrics.jsonl` keeps every row).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import IO, Any

CLOSE_TIMEOUT_S = 300.0  # the most the run waits for W&B to finish writing


class WandbWriter:
    """The parent's end: sends rows to the child that owns the W&B run."""

    def __init__(
        self, run_dir: Path, *, mode: str, config: dict[str, Any], group: str | None = None
    ) -> None:
        environment = dict(os.environ)
        # the child imports this rlkit, wherever it comes from (an editable install, a Ray
        # worker's path)
        path = [entry for entry in sys.path if entry]
        environment["PYTHONPATH"] = os.pathsep.join(path)
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "rlkit.wandb_writer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=environment,
        )
        self._send(
            {
                "project": "rlkit",
                "name": run_dir.name,
                "group": group,
                "dir": str(run_dir),
                "mode": mode,
                "config": config,
            }
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        """One W&B row at `step`."""
        self._send({"step": step, "metrics": metrics})

    def close(self, exit_code: int = 0) -> None:
        """Finish the W&B run and wait (at most `CLOSE_TIMEOUT_S`) for the child to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        stdin: IO[bytes] | None = process.stdin
        try:
            if stdin is not None:
                stdin.write(_line({"finish": exit_code}))
                stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the child has gone already (it said why)
        try:
            process.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            print(
                f"rlkit: W&B did not finish within {CLOSE_TIMEOUT_S:g} s; stopped it "
                "(metrics.jsonl has every row)",
                file=sys.stderr,
            )

    def _send(self, message: dict[str, Any]) -> None:
        process = self._process
        if process is None or process.stdin is None:
            return
        try:
            process.stdin.write(_line(message))
            process.stdin.flush()
        except (BrokenPipeError, OSError):  # W&B could not start: the child said why
            self._process = None
            process.wait()


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, default=str) + "\n").encode()


def main() -> None:
    """The child: start the W&B run, log each row, finish when told or when input ends."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    # W&B makes temporary folders when imported (media, artifacts) and this process ends
    # with os._exit, which skips their clean-up: keep them in one folder removed below
    scratch = tempfile.mkdtemp(prefix="rlkit-wandb-")
    tempfile.tempdir = scratch
    try:
        _serve()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # the run waits for this process to exit: skip the interpreter's finalisation, which
    # with wandb loaded takes about half a second and has nothing left to write
    os._exit(0)


def _serve() -> None:
    """Read rows from stdin until told to finish (or stdin ends), logging each."""
    lines: queue.Queue[bytes | None] = queue.Queue()

    def read() -> None:  # from the start, so the parent never blocks on a full pipe
        for line in sys.stdin.buffer:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, name="rlkit-wandb-input", daemon=True).start()
    first = lines.get()
    if first is None:
        return
    run = _start(json.loads(first))
    if run is None:
        return  # the parent's next row meets a closed pipe and it stops sending
    exit_code = 1  # unless told otherwise: the run's process ended without closing
    while (line := lines.get()) is not None:
        message = json.loads(line)
        if "finish" in message:
            exit_code = int(message["finish"])
            break
        run.log(message["metrics"], step=int(message["step"]))
    run.finish(exit_code=exit_code)
    import wandb

    wandb.teardown()  # W&B's service stopped, every record written


def _start(arguments: dict[str, Any]) -> Any:
    """`wandb.init` as rlkit runs it; online falls back to offline, never hangs."""
    import wandb

    settings = wandb.Settings(
        silent=True,
        init_timeout=20,
        console="off",
        # run.json records the commit and the package versions already: W&B need not run
        # git nor list every installed distribution (CPU the run would share)
        disable_git=True,
        x_save_requirements=False,
    )
    mode = arguments.pop("mode")
    unreachable = _unreachable(_server(wandb, settings)) if mode == "online" else None
    if unreachable is not None:
        print(f"rlkit: W&B online: {unreachable}; logging offline instead", file=sys.stderr)
        mode = "offline"
    try:
        return wandb.init(**arguments, mode=mode, settings=settings, reinit="finish_previous")
    except Exception as error:
        if mode == "online":
            said = (str(error).strip().splitlines() or [type(error).__name__])[0]
            print(f"rlkit: W&B online failed ({said}); logging offline instead", file=sys.stderr)
            try:
                return wandb.init(
                    **arguments, mode="offline", settings=settings, reinit="finish_previous"
                )
            except Exception as second:
                error = second
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(
            f"rlkit: W&B could not start ({first_line}); the run goes on without it "
            "(metrics.jsonl has every row)",
            file=sys.stderr,
        )
        return None


def _server(wandb: Any, settings: Any) -> str | None:
    """The W&B server a run would talk to (WANDB_BASE_URL, else the host `wandb login`
    saved, else W&B's own); None behind a proxy, which only the proxy can judge."""
    proxies = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
    if any(os.environ.get(name) for name in proxies):
        return None
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    try:
        return str(wandb.setup().settings.base_url)
    except Exception:  # W&B's own settings unreadable: its default
        return str(settings.base_url)


def _unreachable(base_url: str | None) -> str | None:
    """Why W&B's server cannot be reached (a name that does not resolve, a refused or
    silent port, within 3 s), or None: without a network, wandb.init would wait for its
    whole init_timeout before failing."""
    if base_url is None:
        return None
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as error:
        return f"cannot reach {host}:{port} ({error.strerror or type(error).__name__})"
    return None


if __name__ == "__main__":
    main()
