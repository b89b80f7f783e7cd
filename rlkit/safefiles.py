"""Files inside run, group and sweep dirs, written so that nothing planted there can
redirect a write, truncation or deletion outside the dir.

- `fresh_temporary(path)`: a new temporary file beside `path`, created exclusively
  (O_EXCL, so a planted file or symlink of any name is never opened), then renamed over
  `path` by the caller (a rename replaces a symlink at `path`, it does not follow it).
- `open_no_follow(path, flags)`: `os.open` that refuses a symlink at `path` (O_NOFOLLOW).
- `refuse_links(directory, files, folders)`: one line naming the first entry rlkit owns
  that is a symlink (or a folder that is not a real folder), before anything changes.
- `read_regular(path, limit)`: the bytes of a regular file; a FIFO, socket or device
  (whose read would block forever or never end) is `NotRegularFile`, an OSError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from rlkit.errors import UserError, shorten


def fresh_temporary(path: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """(fd, temporary path) of a new file in `path`'s folder, made with O_EXCL."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the files rlkit keeps are readable
    return fd, Path(name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a fresh temporary file, then a rename over it."""
    fd, temporary = fresh_temporary(path)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class NotRegularFile(OSError):
    """A FIFO, socket or device where rlkit reads a file."""


def read_regular(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file `path`: at most `limit + 1` of them with a `limit`
    (so that the caller can tell a file over it). Opened without blocking, so that a FIFO
    is refused (`NotRegularFile`) rather than waited on; a folder is IsADirectoryError."""
    with open_regular(path) as handle:
        return handle.read() if limit is None else handle.read(limit + 1)


@contextlib.contextmanager
def open_regular(path: str | Path) -> Iterator[BinaryIO]:
    """The regular file `path` opened for binary reading, checked as `read_regular` checks
    it: for reading a large file (a run's metrics) a line at a time."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file (a FIFO, socket or device)")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            yield handle
    finally:
        os.close(fd)


def open_no_follow(path: Path, flags: int, mode: int = 0o644) -> int:
    """`os.open(path, flags | O_NOFOLLOW | O_CLOEXEC)`; a symlink at `path` is a UserError."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UserError(link_message(path)) from None
        raise


def link_message(path: Path) -> str:
    return (
        f"'{shorten(path, 200)}' is a symbolic link where rlkit keeps its own file or folder; "
        "rlkit does not write through links (it could change files outside the dir): "
        "remove the link, or copy the dir without it"
    )


def refuse_links(directory: Path, files: Iterable[str], folders: Iterable[str]) -> None:
    """UserError for the first of `files` or `folders` in `directory` that is a symlink,
    or of `folders` that exists but is not a real folder."""
    for name in [*files, *folders]:
        entry = directory / name
        if entry.is_symlink():
            raise UserError(link_message(entry))
    for name in folders:
        entry = directory / name
        if entry.exists() and not entry.is_dir():
            raise UserError(
                f"'{shorten(entry, 200)}' is not a folder; rlkit keeps its {name} there: "
                "remove or rename it"
            )
