"""Checkpoints: written atomically, kept a few at a time, loaded without unpickling code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts saved with
`torch.save` and read back with `torch.load(weights_only=True)`. NumPy arrays are
stored as tensors; agents convert them back in `load_state_dict`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rlkit.errors import UserError

_NAME = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step-{step:012d}.pt"


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
    """Write `payload` as checkpoint `step` (temp file, fsync, rename); keep the newest `keep`."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    final = checkpoint_path(directory, step)
    temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        torch.save(_to_tensors(payload), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    fsync_directory(directory)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), path) for path in directory.iterdir() if (m := _NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint safely; a missing, truncated or corrupted file is a UserError."""
    import torch

    if not path.is_file():
        raise UserError(f"checkpoint '{path}' not found; give a step-*.pt file of the run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise UserError(
            f"checkpoint '{path}' is truncated or corrupted ({reason}); "
            "use --checkpoint with an earlier step-*.pt of the run"
        ) from None
    if not isinstance(payload, dict) or "agent" not in payload or "step" not in payload:
        raise UserError(f"checkpoint '{path}' is not an rlkit checkpoint")
    return payload
