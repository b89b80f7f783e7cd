"""Checkpoints: written atomically, kept a few at a time, loaded without unpickling code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts saved with
`torch.save` and read back with `torch.load(weights_only=True)`. NumPy arrays are
stored as tensors; agents convert them back in `load_state_dict`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from pathlib import Path
from typing import Any

from rlkit.errors import UserError
from rlkit.safefiles import fresh_temporary, link_message

_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:012d}.pt"


def is_checkpoint_name(name: str) -> bool:
    """`step-<digits>.pt`, the name of a checkpoint file."""
    return _NAME.match(name) is not None


def step_of(path: Path) -> int:
    """The step in a checkpoint's file name."""
    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"'{path.name}' is not a checkpoint name (step-<digits>.pt)")
    return int(match[1])


def _to_tensors(value: Any) -> Any:
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: _to_tensors(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_tensors(item) for item in value]
    return value


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(directory: Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write `payload` as checkpoint `step` (temp file, fsync, rename); keep the newest `keep`.

    A write that fails (a full disk, a file-size limit, an I/O error) removes its temporary
    file, leaves every earlier checkpoint as it was and raises a one-line UserError.
    """
    import torch

    final = checkpoint_path(directory, step)
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")  # named if mkdir fails
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if directory.is_symlink():
            raise UserError(link_message(directory))
        fd, temporary = fresh_temporary(final)
        with os.fdopen(fd, "wb") as handle:
            torch.save(_to_tensors(payload), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        fsync_directory(directory)
    except UserError:
        raise
    except Exception as error:  # OSError; torch's writer reports a failed write as RuntimeError
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise _write_error(final, error) from None
    for old in list_checkpoints(directory)[:-keep]:
        if not old.is_symlink() and old.is_file():  # only checkpoint files rlkit wrote
            old.unlink(missing_ok=True)
    return final


def _write_error(final: Path, error: BaseException) -> UserError:
    reason = _os_reason(error)
    if reason is None:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
        reason = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    previous = [path for path in list_checkpoints(final.parent) if path != final]
    run_dir = final.parent.parent
    if previous:
        kept = f"{previous[-1].name} is kept"
        then = f"continue with: rlkit run --resume {run_dir}"
    else:
        kept, then = "no earlier checkpoint exists", "start the run again"
    return UserError(
        f"cannot write checkpoint '{final}' ({reason}); the run stopped and {kept}; free "
        f"some space (or lift the limit), then {then}"
    )


def _os_reason(error: BaseException) -> str | None:
    """The OS's words for a failed write: the error itself or one in its chain."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        current = current.__cause__ or current.__context__
    text = str(error)
    for number in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EIO):
        if os.strerror(number) in text:
            return os.strerror(number)
    return None


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), path) for path in directory.iterdir() if (m := _NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely: a missing, truncated or corrupted file, or one without the
    fields of an rlkit checkpoint (or with fields of the wrong type), is a UserError."""
    import torch

    if not path.is_file():
        raise UserError(f"checkpoint '{path}' not found; give a step-*.pt file of the run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        text = str(error).strip()
        reason = text.splitlines()[0].split(". ")[0][:120] if text else type(error).__name__
        raise UserError(f"checkpoint '{path}' is truncated or corrupted ({reason})") from None
    problem = payload_problem(payload)
    if problem is not None:
        raise UserError(f"checkpoint '{path}' is not an rlkit checkpoint: {problem}")
    return payload  # type: ignore[no-any-return]


def newest_step(directory: Path) -> int | None:
    """The step of the newest checkpoint in `directory` that loads (a damaged newer one is
    passed over, as a resume or an evaluation passes it over); None if there is none, and
    UserError if there are checkpoints but none of them loads."""
    found = list_checkpoints(directory)
    problems = []
    for path in reversed(found):
        try:
            return int(load(path)["step"])
        except UserError as error:
            problems.append(str(error))
    if problems:
        raise UserError(f"none of the {len(found)} checkpoints loads; the newest: {problems[0]}")
    return None


# field -> (accepted types, words), checked on every load; agent_name and episodes are
# optional (older checkpoints may lack them)
_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "step": ((int,), "a step count"),
    "agent": ((dict,), "a mapping of the agent's state"),
    "env_rng": ((dict,), "a mapping (the env's RNG state)"),
    "agent_name": ((str,), "an agent's name"),
    "episodes": ((int,), "an episode count"),
}
_REQUIRED = ("step", "agent")


def payload_problem(payload: Any) -> str | None:
    """What is wrong with a loaded checkpoint's fields, or None."""
    if not isinstance(payload, dict):
        return f"it holds a {type(payload).__name__}, not a mapping"
    for field in _REQUIRED:
        if field not in payload:
            return f"it has no '{field}'"
    for field, (types, words) in _FIELDS.items():
        if field not in payload:
            continue
        value = payload[field]
        if not isinstance(value, types) or isinstance(value, bool):
            return f"'{field}' must be {words} (got {type(value).__name__})"
        if isinstance(value, int) and value < 0:
            return f"'{field}' must be 0 or more (got {value})"
    return None
