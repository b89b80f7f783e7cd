"""A sweep dir read back for `rlkit sweep --resume`, which restores only Tune state that
this user's rlkit wrote.

Tune keeps a sweep's state in `tune/` as pickles (`tuner.pkl`, trial checkpoints, errors)
and as JSON with pickles inside (`experiment_state-*.json`); restoring it runs whatever
code a crafted file holds. So whenever a sweep stops (its trials done, Ctrl-C, an error),
rlkit records the SHA-256 of every file under `tune/` and of `sweep.yaml` in
`state.json`, sealed with an HMAC-SHA256 under a key of this user's kept outside any
sweep dir (`~/.config/rlkit/sweep.key`, made 0600 on first use; `RLKIT_SWEEP_KEY_FILE`
puts it elsewhere). `--resume` checks the seal and every file against the record before
anything is unpickled, and refuses what it cannot vouch for, unless told `--trust-state`.

    record_state(sweep_dir)            # after tuner.fit(), however it ended
    check_state(sweep_dir)             # before Tuner.restore(); UserError if untrusted
    read_sweep_dir(sweep_dir)          # the sweep, checked first (--resume)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from rlkit.config import load_yaml, validate
from rlkit.errors import UserError
from rlkit.rundir import write_text
from rlkit.safefiles import read_regular
from rlkit.sweep.spec import SWEEP_FILE, TUNE_DIR, Sweep, SweepSpec, check_name, check_sweep

STATE_RECORD = "state.json"
KEY_FILE_VARIABLE = "RLKIT_SWEEP_KEY_FILE"
_SEAL_CONTEXT = b"rlkit sweep state, version 1\n"
_LINK = "symbolic link"  # a link's entry in the record: never trusted
_MAX_RECORD_BYTES = 64 * 2**20


def key_file() -> Path:
    """Where this user's sweep key lives: $RLKIT_SWEEP_KEY_FILE, else ~/.config/rlkit/."""
    given = os.environ.get(KEY_FILE_VARIABLE)
    if given:
        return Path(given).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "rlkit" / "sweep.key"


def record_state(directory: Path) -> None:
    """Record the sweep dir's Tune state as this user's rlkit leaves it, sealed."""
    files = _digests(directory)
    key = _key(create=True)
    assert key is not None  # made if missing
    record = {"version": 1, "files": files, "hmac": _seal(key, files)}
    write_text(directory / STATE_RECORD, json.dumps(record, indent=1, sort_keys=True))


def check_state(directory: Path) -> None:
    """UserError unless every file Tune may unpickle is as `record_state` recorded it."""

    def untrusted(why: str) -> UserError:
        return UserError(
            f"--resume {directory}: {why}; restoring Tune's state unpickles it, which runs "
            "any code in it: start the sweep again in a new dir, or add --trust-state if "
            f"you trust every file in {directory}"
        )

    path = directory / STATE_RECORD
    if not path.is_file():
        raise untrusted(
            f"no {STATE_RECORD}, the record rlkit keeps of a sweep's Tune state when the "
            "sweep stops (the sweep was killed, or this dir was not made by your rlkit)"
        )
    try:
        if path.stat().st_size > _MAX_RECORD_BYTES:
            raise ValueError("too large")
        record = json.loads(read_regular(path, _MAX_RECORD_BYTES))
        files, seal = record["files"], record["hmac"]
        if not isinstance(files, dict) or not isinstance(seal, str):
            raise ValueError("not a record")
        if not all(isinstance(v, str) for v in files.values()):
            raise ValueError("not a record")
    except (OSError, ValueError, KeyError, TypeError):
        raise untrusted(f"{STATE_RECORD} is damaged") from None
    key = _key(create=False)
    if key is None:
        raise untrusted(f"your sweep key ({key_file()}) is missing, so {STATE_RECORD} is not yours")
    if not hmac.compare_digest(_seal(key, files), seal):
        raise untrusted(f"{STATE_RECORD} was not sealed with your sweep key ({key_file()})")
    found = _digests(directory)
    for name in sorted(set(files) | set(found)):
        if found.get(name) == _LINK:
            raise untrusted(f"{name} is a symbolic link")
        if name not in files:
            raise untrusted(f"{name} is not in {STATE_RECORD}: rlkit did not write it")
        if name not in found:
            raise untrusted(f"{name} is in {STATE_RECORD} but gone")
        if found[name] != files[name]:
            raise untrusted(f"{name} changed since rlkit recorded it")


def read_sweep_dir(
    directory: str | Path, wandb: str | None = None, *, trust_state: bool = False
) -> Sweep:
    """The sweep of an existing sweep dir (for --resume); unless `trust_state`, only of
    one whose state this user's rlkit recorded (`rlkit.sweep.state`)."""
    path = Path(directory)
    if not (path / SWEEP_FILE).is_file() or not (path / TUNE_DIR).is_dir():
        raise UserError(
            f"--resume {directory}: not a sweep dir (no {SWEEP_FILE} and {TUNE_DIR}/); "
            "give a folder made by `rlkit sweep`"
        )
    if not trust_state:
        check_state(path)
    where = f"sweep '{path / SWEEP_FILE}'"
    data = load_yaml(path / SWEEP_FILE)
    path = path.absolute()
    spec: SweepSpec = validate(SweepSpec, data, {}, "a sweep")
    if spec.name is not None:
        check_name(spec.name, f"{where}: name")
    if wandb is not None:
        spec = spec.model_copy(update={"wandb": wandb})
    return check_sweep(spec, path, where)


def _digests(directory: Path) -> dict[str, str]:
    """SHA-256 of `sweep.yaml` and of every file under `tune/`, by path in the sweep dir."""
    paths = [directory / SWEEP_FILE, directory / TUNE_DIR]
    for root, folders, names in os.walk(directory / TUNE_DIR):
        base = Path(root)
        paths += [base / name for name in names]
        paths += [base / name for name in folders if (base / name).is_symlink()]
    digests = {}
    for path in paths:
        name = path.relative_to(directory).as_posix()
        if path.is_symlink():
            digests[name] = _LINK
        elif path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(2**20), b""):
                    digest.update(block)
            digests[name] = digest.hexdigest()
    return digests


def _seal(key: bytes, files: dict[str, Any]) -> str:
    text = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, _SEAL_CONTEXT + text, hashlib.sha256).hexdigest()


def _key(create: bool) -> bytes | None:
    """This user's sweep key: read, or with `create` made on first use (0600)."""
    path = key_file()
    if not path.exists():
        if not create:
            return None
        _make_key(path)
    damaged = UserError(
        f"sweep key {path} is damaged; delete it (sweeps recorded with it then need "
        "--trust-state to resume)"
    )
    try:
        info = path.stat()
        text = read_regular(path, 4096).decode().strip()
    except (OSError, UnicodeDecodeError):
        raise damaged from None
    if info.st_mode & 0o077 or info.st_uid != os.getuid():
        raise UserError(
            f"sweep key {path} is open to other users (mode {info.st_mode & 0o777:o}) or not "
            f"yours; make it yours with mode 600 (chmod 600 {path})"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise damaged from None
    if len(key) < 16:
        raise damaged
    return key


def _make_key(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temporary, path)  # never over a key another process made meanwhile
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    except OSError as error:
        raise UserError(
            f"cannot make the sweep key {path} ({error.strerror}); set {KEY_FILE_VARIABLE} "
            "to a file of yours"
        ) from None
