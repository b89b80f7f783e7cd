"""Ray start-up: an embedded local Ray by default, an existing cluster with `--address`.

    init_ray(None)                # RAY_ADDRESS if set, else start a local Ray in this process
    init_ray("10.0.0.5:6379")     # connect to a running head (`ray start --head`)
    init_ray("ray://host:10001")  # Ray Client

Only this module and `rlkit.raypool` import ray, and only inside functions: importing rlkit,
`rlkit --help` and `rlkit list` never load it. A Ray already initialised in this process
(a test session, a Tune trial) is reused as it is.

The embedded Ray: `num_cpus` = this machine's cores, no dashboard, Ray's own logging at
ERROR. Its workers run this Python and see this process's import path: Ray adds the
current directory and the script's directory, and `init_ray` also hands its workers the
driver's extra `sys.path` entries (PYTHONPATH, set only while Ray starts its processes), so
an editable rlkit, `rlkit.agents` / `rlkit.envs` plugins and modules such as
`tests.pool_workers` import in workers exactly as they do here. On a cluster, every node
needs rlkit (and any plugin package) installed in the Python that runs Ray.

A cluster address is checked before Ray sees it: a TCP connect and a gRPC handshake, each
bounded by `PROBE_TIMEOUT_S`, because `ray.init(address=...)` retries an unreachable
address for minutes. Ray's own connection retries are bounded the same way
(`RAY_gcs_server_port_wait_time_s`, unless you set it), so a head that answers but refuses
the connection (say, it needs a token: `RAY_AUTH_MODE=token`) fails within seconds too.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rlkit.errors import UserError

ADDRESS_ENV = "RAY_ADDRESS"
PROBE_TIMEOUT_S = 3.0
ASK_TIMEOUT_S = 5.0  # a Ray head's GCS gives its cluster id; others never do
CONNECT_RETRIES_ENV = "RAY_gcs_server_port_wait_time_s"  # Ray: connection attempts, ~1 s each
CONNECT_RETRIES = 3
CLIENT_PREFIX = "ray://"
# HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, the Ray
# Client server) answers with a SETTINGS frame of its own (frame type 4 in byte 3).
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_HTTP2_SETTINGS = 4


def ray_address(address: str | None) -> tuple[str | None, str]:
    """The cluster address to use and how it was given: `--address`, else `RAY_ADDRESS`.

    Returns `(None, "")` for an embedded local Ray.
    """
    if address:
        return address.strip(), f"--address {address.strip()}"
    from_env = os.environ.get(ADDRESS_ENV, "").strip()
    if from_env:
        return from_env, f"{ADDRESS_ENV}={from_env}"
    return None, ""


def check_address(address: str | None) -> str | None:
    """The cluster address to connect to (`--address`, else `RAY_ADDRESS`), checked.

    None means an embedded local Ray. A cluster address must be host:port (or
    ray://host:port, or auto) where a Ray head answers; otherwise a one-line UserError,
    within `PROBE_TIMEOUT_S` seconds or so.
    """
    target, given_as = ray_address(address)
    if target is not None and target != "auto":
        _probe(target, given_as)
    return target


def init_ray(address: str | None, *, forward_worker_output: bool = True) -> float:
    """Make Ray ready in this process; returns the seconds it took (0 when reused).

    `address` None and no `RAY_ADDRESS`: start an embedded local Ray. Otherwise connect
    to that cluster (`host:port`, `ray://host:port`, or `auto` for the newest `ray start`
    on this machine). An unreachable address raises a one-line UserError within seconds.
    `forward_worker_output=False` (sweeps, seed groups, whose trials and seeds write their
    own log files) keeps Ray from copying its workers' output onto this terminal.
    """
    started = time.perf_counter()
    loaded = sys.modules.get("ray")
    if loaded is not None and loaded.is_initialized():
        return 0.0
    target = check_address(address)
    given_as = ray_address(address)[1]
    # rlkit reads every result it waits for and turns a worker's error into its own one
    # line; a call left unread once the run stops (the other worker's, when one failed)
    # would otherwise be logged by Ray as an "Unhandled error" after that line
    os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")

    import ray

    with _keep_sigterm_handler():
        if target is None:
            with _environment(PYTHONPATH=_worker_python_path()):
                ray.init(
                    address="local",  # never attach to some other `ray start` on this machine
                    num_cpus=os.cpu_count() or 1,
                    include_dashboard=False,
                    logging_level=logging.ERROR,
                    log_to_driver=forward_worker_output,
                )
        else:
            retries = os.environ.get(CONNECT_RETRIES_ENV, str(CONNECT_RETRIES))
            with _environment(**{CONNECT_RETRIES_ENV: retries}):
                try:
                    ray.init(
                        address=target,
                        logging_level=logging.ERROR,
                        log_to_driver=forward_worker_output,
                    )
                except (ConnectionError, RuntimeError, ValueError) as error:
                    if _needs_token(error):
                        raise UserError(
                            f"{given_as}: the Ray cluster there requires token authentication; "
                            "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token)"
                        ) from None
                    raise UserError(_cannot_reach(given_as, _reason(error))) from None
    return time.perf_counter() - started


def shutdown_ray() -> None:
    """Disconnect from Ray (and stop the embedded one), if this process started or joined one."""
    loaded = sys.modules.get("ray")
    if loaded is not None and loaded.is_initialized():
        loaded.shutdown()


def embedded_cpus(address: str | None) -> float | None:
    """This machine's CPUs when `init_ray(address)` would start an embedded local Ray
    (none running in this process, no address given): known before Ray starts."""
    loaded = sys.modules.get("ray")
    if (loaded is not None and loaded.is_initialized()) or ray_address(address)[0] is not None:
        return None
    return float(os.cpu_count() or 1)


def cluster_cpus() -> float:
    """CPUs the connected Ray cluster has in total (call after `init_ray`)."""
    import ray

    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return float(resources.get("CPU", 0.0))


def free_cpus() -> float:
    """CPUs of the connected Ray cluster that no actor or task has reserved now."""
    import ray

    resources: dict[str, float] = ray.available_resources()  # type: ignore[no-untyped-call]
    return float(resources.get("CPU", 0.0))


def _cannot_reach(given_as: str, reason: str) -> str:
    remedy = "omit --address" if given_as.startswith("--address") else f"unset {ADDRESS_ENV}"
    return (
        f"{given_as}: cannot reach a Ray cluster there ({reason}); give host:port of a "
        f"running Ray head (ray start --head) or {remedy} for a local Ray"
    )


def _host_port(target: str, given_as: str) -> tuple[str, int]:
    text = target.removeprefix(CLIENT_PREFIX)
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"{given_as}: not a Ray address; give host:port of a running Ray head "
            "(e.g. 10.0.0.5:6379), ray://host:port for Ray Client, or auto"
        )
    return host, int(port)


def _probe(target: str, given_as: str) -> None:
    """Fail fast unless a gRPC server (a Ray head) answers at `target`."""
    host, port = _host_port(target, given_as)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as connection:
            connection.settimeout(PROBE_TIMEOUT_S)
            connection.sendall(_HTTP2_HELLO)
            reply = connection.recv(9)
    except socket.gaierror as error:
        raise UserError(_cannot_reach(given_as, f"unknown host '{host}': {error}")) from None
    except ConnectionRefusedError:
        raise UserError(_cannot_reach(given_as, "connection refused")) from None
    except TimeoutError:
        raise UserError(
            _cannot_reach(given_as, f"no answer within {PROBE_TIMEOUT_S:g} s")
        ) from None
    except OSError as error:
        raise UserError(_cannot_reach(given_as, error.strerror or str(error))) from None
    if len(reply) < 4 or reply[3] != _HTTP2_SETTINGS:
        raise UserError(_cannot_reach(given_as, "something answers there, but not Ray"))
    if not target.startswith(CLIENT_PREFIX):  # a Ray Client server is not a GCS
        _ask_ray(f"{host}:{port}", given_as)


def _ask_ray(target: str, given_as: str) -> None:
    """An HTTP/2 server answers at `target`: ask it for what only a Ray head's GCS gives
    (its cluster id), for at most `ASK_TIMEOUT_S` (a Ray head answers in milliseconds).
    Any other HTTP/2 server would have ray.init retry it for two minutes. The question
    runs in a thread of its own, as Ray's client waits 30 s before it gives up."""
    from ray._raylet import GcsClient  # type: ignore[attr-defined]  # before the clock

    answer: dict[str, BaseException | None] = {}

    def ask() -> None:
        try:
            GcsClient(address=target)
            answer["error"] = None
        except Exception as error:  # Ray's RpcError and the like
            answer["error"] = error

    threading.Thread(target=ask, name="rlkit-ray-probe", daemon=True).start()
    deadline = time.monotonic() + ASK_TIMEOUT_S
    while "error" not in answer and time.monotonic() < deadline:
        time.sleep(0.05)
    error = answer.get("error", TimeoutError())
    if error is None or _needs_token(error):
        return  # a Ray head (one that wants a token: ray.init says so in its own line)
    said = (
        f"no cluster id within {ASK_TIMEOUT_S:g} s"
        if isinstance(error, TimeoutError)
        else _reason(error)
    )
    raise UserError(_cannot_reach(given_as, f"something answers there, but it is not Ray: {said}"))


def _error_chain(error: BaseException) -> str:
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(texts) < 10:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    return " ".join(texts)


def _needs_token(error: BaseException) -> bool:
    text = _error_chain(error)
    return "InvalidAuthToken" in text or "AuthenticationError" in text


def _reason(error: BaseException) -> str:
    """The first line of Ray's connection error (its cause chain holds the detail)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _worker_python_path() -> str:
    """This process's import path for Ray's workers: entries outside the Python install."""
    installs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    entries: list[str] = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        inside_install = any(path == root or path.startswith(root + os.sep) for root in installs)
        if os.path.isdir(path) and not inside_install and path not in entries:
            entries.append(path)
    existing = os.environ.get("PYTHONPATH")
    if existing:
        entries.extend(p for p in existing.split(os.pathsep) if p and p not in entries)
    return os.pathsep.join(entries)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the processes Ray starts, and restore them after."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _keep_sigterm_handler() -> Iterator[None]:
    """`ray.init` installs its own SIGTERM handler (exit at once); keep rlkit's (stop, save)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Any = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
