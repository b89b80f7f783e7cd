"""Workers built by the run (rlkit.workers, Run.start_workers): one seed scheme for every
pool agent, printed once and recorded in run.json, fresh episodes on a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import rlkit
from rlkit.seeding import derive_seed, run_seeds
from rlkit.workers import TorchStream, reset_seeds, worker_seeds

POOL_AGENTS = {
    "trpo": ("CartPole-v1", ["steps_per_worker=100"]),
    "rpg": ("CartPole-v1", ["steps_per_worker=100"]),
    "a3c": ("CartPole-v1", []),
    "nes": ("CartPole-v1", ["population=4", "noise_table_size=10000", "hidden=[8]"]),
}


def test_one_scheme_from_the_agent_seed() -> None:
    seeds = worker_seeds(11, 3)
    assert seeds == [derive_seed(11, "worker", index=i) for i in range(3)]
    assert len(set(seeds)) == 3
    assert reset_seeds(seeds, 0) == seeds  # a fresh run resets with the worker's own seed
    resumed = reset_seeds(seeds, 500)
    assert resumed == [derive_seed(seed, "worker", index=500) for seed in seeds]
    assert not set(resumed) & set(seeds) and resumed != reset_seeds(seeds, 600)


def test_a_torch_stream_leaves_the_process_stream_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    stream = TorchStream(5)
    with stream:
        first = torch.rand(2)
    with stream:  # goes on where it stopped
        second = torch.rand(2)
    with TorchStream.isolated():
        torch.rand(100)
    assert torch.equal(torch.rand(3), expected)  # the process's stream never moved
    torch.manual_seed(5)
    assert torch.equal(torch.cat([first, second]), torch.rand(4))


@pytest.mark.parametrize("agent", sorted(POOL_AGENTS))
def test_run_json_lists_the_worker_seeds(
    agent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env, overrides = POOL_AGENTS[agent]
    common = {"wandb": "disabled", "progress": False, "threads": 1}
    result = rlkit.train(
        agent, env=env, steps=400, seed=4, pool="inprocess", workers=3, out_dir=str(tmp_path),
        checkpoint_every=200, overrides=overrides, **common,
    )  # fmt: skip
    record = json.loads((result.run_dir / "run.json").read_text())
    expected = worker_seeds(run_seeds(4)["agent"], 3)
    assert record["seeds"]["workers"] == expected
    assert record["worker_starts"] == [{"step": 0, "reset_seeds": expected}]
    assert capsys.readouterr().err.count(f"3 inprocess workers, seeds {expected}") == 1
    # a resumed run starts its workers on fresh episodes: recorded with the step
    resumed = rlkit.train(resume=result.run_dir, steps=800, wandb="disabled", progress=False)
    record = json.loads((resumed.run_dir / "run.json").read_text())
    start = record["worker_starts"][1]
    assert start["reset_seeds"] == reset_seeds(expected, start["step"]) and start["step"] > 0
