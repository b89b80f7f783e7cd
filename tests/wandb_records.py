"""Read an offline W&B run file (`run-*.wandb`): its records, and its history rows.

The file is W&B's transaction log: a 7-byte header (`:W&B`, magic 0xBEE1, version 0),
then LevelDB log records in 32 KiB blocks, each a CRC (4 bytes), a length (2, little
endian), a type (1: full, 2: first, 3: middle, 4: last) and a serialised `Record`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

HEADER = 7
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    """Every `Record` in the file, in order (a record cut short at the end is dropped)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    found, pending, offset = [], b"", HEADER
    while offset + 7 <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < 7:  # the block's tail is padding
            offset += left_in_block
            continue
        length, kind = struct.unpack("<HB", data[offset + 4 : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (FULL, FIRST):
            pending = chunk
        elif kind in (MIDDLE, LAST):
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


def history(path: Path) -> list[dict[str, Any]]:
    """The run's history rows (`run.log`), each with its `_step`."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            row = {}
            for item in record.history.item:
                row[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
            rows.append(row)
    return rows


def exit_code(path: Path) -> int | None:
    """The exit code the run finished with (None: it never finished)."""
    for record in records(path):
        if record.WhichOneof("record_type") == "exit":
            return int(record.exit.exit_code)
    return None


def group(path: Path) -> str | None:
    """The W&B group the run was made in."""
    for record in records(path):
        if record.WhichOneof("record_type") == "run":
            return str(record.run.run_group) or None
    return None
