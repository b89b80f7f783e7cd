"""Where a replay buffer keeps its arrays: in memory, or memory-mapped files in a run dir.

    files = ReplayFiles(run_dir / REPLAY_DIR, remedy="lower buffer_size")
    arrays, reopened = files.open([ArraySpec("frames", (1, 1_000_000, 84, 84), np.uint8), ...])
    ...                                     # the buffer writes into `arrays` as into any array
    files.flush()                           # msync: everything written so far is on disk

Each array is one `.npy` file (`np.load(path, mmap_mode="r")` reads it), and `layout.json`
names them with their shapes and dtypes. `open` reopens files whose layout matches and
otherwise makes them new: it first checks that the disk has room for all of them
(`shutil.disk_usage`), then reserves their blocks (`posix_fallocate`), so that a full
disk is a one-line UserError naming the folder before anything is written, never a
SIGBUS hours into a run (a write to a memory-mapped page the file system cannot back
kills the process). Reserved blocks read as zeros, like `np.zeros`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rlkit.checkpoint import fsync_directory
from rlkit.errors import UserError
from rlkit.safefiles import link_message, open_no_follow, replace_text

REPLAY_DIR = "replay"  # in a run dir: <run>/replay/
LAYOUT_FILE = "layout.json"
_FORMAT = 1
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@dataclass(frozen=True)
class ArraySpec:
    """One array of a replay buffer: its name (the file's stem), shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def describe(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "dtype": self.dtype.str}


def allocate_in_memory(specs: list[ArraySpec]) -> dict[str, NDArray[Any]]:
    """Zeroed arrays in memory (a replay that is not persisted)."""
    return {spec.name: np.zeros(spec.shape, dtype=spec.dtype) for spec in specs}


def free_bytes(directory: Path) -> int:
    """Bytes free to this user on the file system of `directory`."""
    return shutil.disk_usage(directory).free


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.1f} MiB"


class ReplayFiles:
    """A replay buffer's arrays as memory-mapped `.npy` files in `directory`.

    `remedy` ends the message of a full disk (what the user can change, e.g.
    "lower buffer_size or set persist_replay=false").
    """

    def __init__(self, directory: Path, *, remedy: str) -> None:
        self.directory = directory
        self.remedy = remedy
        self._maps: list[np.memmap[Any, Any]] = []

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.npy"

    def open(self, specs: list[ArraySpec]) -> tuple[dict[str, NDArray[Any]], bool]:
        """Arrays backed by the files, and whether existing files were reopened (with
        their contents) rather than made new (zeros)."""
        reopened = self._matches(specs)
        if not reopened:
            self._create(specs)
        arrays: dict[str, NDArray[Any]] = {}
        for spec in specs:
            if self.path(spec.name).is_symlink():  # mapped "r+", it would be written through
                raise UserError(link_message(self.path(spec.name)))
            mapped = np.lib.format.open_memmap(self.path(spec.name), mode="r+")
            self._maps.append(mapped)
            # a plain ndarray view: indexing a np.memmap costs a subclass wrap per call
            arrays[spec.name] = mapped.view(np.ndarray)
        return arrays, reopened

    def flush(self) -> None:
        """msync every file: what was written to the arrays is on disk when this returns."""
        for mapped in self._maps:
            mapped.flush()

    @property
    def disk_bytes(self) -> int:
        """Bytes the files take on disk (allocated blocks, not the apparent size)."""
        return sum(path.stat().st_blocks * 512 for path in self.directory.glob("*.npy"))

    def _matches(self, specs: list[ArraySpec]) -> bool:
        layout = self.directory / LAYOUT_FILE
        try:
            saved = json.loads(layout.read_text())
        except (OSError, ValueError):
            return False
        wanted = {"format": _FORMAT, "arrays": {spec.name: spec.describe() for spec in specs}}
        if saved != wanted:
            return False
        for spec in specs:
            try:
                mapped = np.lib.format.open_memmap(self.path(spec.name), mode="r")
            except (OSError, ValueError):
                return False
            same = mapped.shape == spec.shape and mapped.dtype == spec.dtype
            del mapped
            if not same:
                return False
        return True

    def _create(self, specs: list[ArraySpec]) -> None:
        """New zeroed files for `specs`, after checking and reserving the disk space."""
        directory = self.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if directory.is_symlink():  # its *.npy files would be someone else's
                raise UserError(link_message(directory))
            (directory / LAYOUT_FILE).unlink(missing_ok=True)  # stale until remade below
            for old in directory.glob("*.npy"):
                old.unlink()  # a planted link goes, its target stays
        except OSError as error:
            raise UserError(f"replay files: cannot write {directory} ({error.strerror})") from None
        needed = sum(spec.nbytes for spec in specs)
        free = free_bytes(directory)
        if needed > free:
            self._refuse(needed, free)
        for spec in specs:
            try:
                self._create_file(spec)
            except OSError as error:
                if error.errno in _NO_SPACE:
                    self._refuse(needed, free_bytes(directory))
                raise UserError(
                    f"replay files: cannot create {self.path(spec.name)} ({error.strerror})"
                ) from None
        layout = {"format": _FORMAT, "arrays": {spec.name: spec.describe() for spec in specs}}
        replace_text(directory / LAYOUT_FILE, json.dumps(layout, indent=1))
        fsync_directory(directory)

    def _create_file(self, spec: ArraySpec) -> None:
        """A `.npy` file of zeros with its blocks reserved (sparse where the file system
        cannot reserve them)."""
        path = self.path(spec.name)
        header = {"descr": np.lib.format.dtype_to_descr(spec.dtype), "fortran_order": False}
        with open(open_no_follow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "wb") as handle:
            np.lib.format.write_array_header_2_0(handle, {**header, "shape": spec.shape})
            size = handle.tell() + spec.nbytes
            handle.flush()
            reserve = getattr(os, "posix_fallocate", None)
            try:
                if reserve is None:
                    raise OSError(errno.EOPNOTSUPP, "no posix_fallocate")
                reserve(handle.fileno(), 0, size)
            except OSError as error:
                if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                handle.truncate(size)  # the file system cannot reserve: a sparse file
            os.fsync(handle.fileno())

    def _refuse(self, needed: int, free: int) -> None:
        # leave no half-made replay behind
        for path in self.directory.glob("*.npy"):
            path.unlink(missing_ok=True)
        raise UserError(
            f"replay files need {_gib(needed)} in {self.directory}, but {_gib(free)} is free "
            f"there; free disk space, {self.remedy}"
        )
