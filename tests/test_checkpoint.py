"""Checkpoints: atomic writes, retention, safe loading, clear errors for damaged files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rlkit import checkpoint
from rlkit.errors import UserError


def payload(step: int) -> dict:
    generator = np.random.default_rng(step)
    return {
        "step": step,
        "agent": {"table": np.arange(6.0).reshape(2, 3), "rng": generator.bit_generator.state},
    }


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path, 42, payload(42), keep=3)
    assert path.name == "step-000000000042.pt"
    loaded = checkpoint.load(path)
    assert loaded["step"] == 42
    np.testing.assert_array_equal(
        np.asarray(loaded["agent"]["table"]), np.arange(6.0).reshape(2, 3)
    )
    assert loaded["agent"]["rng"] == np.random.default_rng(42).bit_generator.state
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_keeps_only_the_newest(tmp_path: Path) -> None:
    for step in (10, 20, 30, 40, 50):
        checkpoint.save(tmp_path, step, payload(step), keep=2)
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == [
        "step-000000000040.pt",
        "step-000000000050.pt",
    ]


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    good = checkpoint.save(tmp_path, 1, payload(1), keep=3)
    before = good.read_bytes()

    def explode(obj, handle):  # a crash in the middle of writing
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", explode)
    with pytest.raises(UserError, match=r"cannot write checkpoint .*step-000000000001.pt is kept"):
        checkpoint.save(tmp_path, 2, payload(2), keep=3)
    assert checkpoint.list_checkpoints(tmp_path) == [good]
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name], "a temp file was left"


def test_refuses_pickled_code(tmp_path: Path) -> None:
    evil = tmp_path / "step-000000000001.pt"

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"step": 1, "agent": Exploit()}, evil)
    with pytest.raises(UserError, match="truncated or corrupted"):
        checkpoint.load(evil)


def test_damaged_and_foreign_files(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path, 5, payload(5), keep=3)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="truncated or corrupted"):
        checkpoint.load(path)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(UserError, match="is not an rlkit checkpoint"):
        checkpoint.load(foreign)
    with pytest.raises(UserError, match="not found"):
        checkpoint.load(tmp_path / "missing.pt")
