"""DQN's persisted replay: checkpoint time and disk use of a 1M-transition Atari replay, and
Breakout steps/s with and without `persist_replay`.

    .venv/bin/python benchmarks/dqn_replay_persistence.py [--transitions 1000000]
        [--rounds 3] [--steps 3000] [--warmup 1000] [--buffer-size 1000000] [--copy]
        [--skip-disk] [--skip-ops] [--skip-speed] [--dir DIR]

Disk part: a replay of `--transitions` Atari slots (84x84 frames, one env, the margin of
the default `checkpoint_every` of 50,000) in memory-mapped files under `--dir`, filled
with synthetic frames (a pool of 256 random 84x84 frames, episodes of 1,000 steps)
through the real buffer API (`start_episodes`, `add`), not through 1M emulator steps.
It prints the time to create the files (disk check and block reservation), their size
on disk, and the time of a DQN checkpoint (Nature CNN networks, Adam state, the
replay's indices after its msync), against the same checkpoint without a persisted
replay: right after the fill (the most dirty pages) and after one more checkpoint
interval of 50,000 transitions (the steady state), median of 3 each. `--copy` also
times what a checkpoint that copies the replay costs (the arrays written to one file
and fsynced, as a replay saved with each checkpoint is).

Replay part: the buffer's own cost per agent step, persisted against in memory: an
`add` (a new transition, on fresh pages) and a `sample(32)` (one update's batch), on
two `--transitions` replays, alternating for `--rounds` rounds; apart from the network
and the emulator, which both variants share, this is all that differs between them.

Speed part: `rlkit.train` on Breakout (Nature CNN, batch 32 every 4 steps, epsilon held
at 0.1 as in benchmarks/dqn_atari_speed.py, one env), with `persist_replay` true and
false alternating for `--rounds` rounds (so machine noise hits both alike), checkpoints
every 1,000 steps so that their msyncs fall inside the measured window; agent steps/s
from `--warmup` to `--steps` read from the run's own time rows; medians and their ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from rlkit import checkpoint
from rlkit.agents.dqn import DQN, DQNConfig
from rlkit.logger import read_metrics
from rlkit.replay import ReplayBuffer, checkpoint_margin
from rlkit.replay_storage import ReplayFiles

EPSILON = 0.1
CHECKPOINT_EVERY = 50_000  # the run setting's default
EPISODE = 1_000  # synthetic episodes' length, agent steps


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f}"


def gib(size: float) -> str:
    return f"{size / 2**30:.2f} GiB"


class Filler:
    """Synthetic Atari transitions through the buffer's own API."""

    def __init__(self, buffer: ReplayBuffer) -> None:
        rng = np.random.default_rng(0)
        self.buffer = buffer
        self.pool = rng.integers(0, 256, (256, 1, 4, 84, 84), dtype=np.uint8)
        self.actions = rng.integers(0, 4, 4096)
        self.t = 0
        self.env = np.array([0])
        buffer.start_episodes(self.env, self.pool[0])

    def add(self, count: int) -> None:
        buffer, pool, env = self.buffer, self.pool, self.env
        no = np.array([False])
        for _ in range(count):
            self.t += 1
            ended = self.t % EPISODE == 0
            frame = pool[self.t % 256]
            action = self.actions[self.t % 4096 : self.t % 4096 + 1]
            reward = np.array([float(self.t % 7 == 0)])
            buffer.add(env, action, reward, frame, np.array([ended]), no)
            if ended:
                buffer.start_episodes(env, pool[(self.t + 1) % 256])


def timed_checkpoints(agent: DQN, directory: Path, step: int, repeats: int) -> list[float]:
    """Seconds of `repeats` checkpoints as `Run.save_checkpoint` writes them."""
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        payload = {"format": 1, "step": step + index, "agent": agent.state_dict()}
        checkpoint.save(directory, step + index, payload, keep=1)
        times.append(time.perf_counter() - started)
    return times


def disk_part(transitions: int, root: Path, copy: bool) -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    agent = DQN(
        DQNConfig(buffer_size=transitions, device="cpu"),
        observation_space=space,
        action_space=gym.spaces.Discrete(4),
        seed=0,
    )
    with tempfile.TemporaryDirectory(dir=root) as temporary:
        run_dir = Path(temporary)
        margin = checkpoint_margin(CHECKPOINT_EVERY, 1, transitions)
        files = ReplayFiles(run_dir / "replay", remedy="lower --transitions")
        started = time.perf_counter()
        buffer = ReplayBuffer(
            capacity=transitions,
            num_envs=1,
            observation_shape=(4, 84, 84),
            dtype=np.uint8,
            stacked=True,
            margin=margin,
            files=files,
        )
        created = time.perf_counter() - started
        apparent = sum(path.stat().st_size for path in (run_dir / "replay").glob("*.npy"))
        print(
            f"created {transitions:,} + {margin:,} (margin) slots in {created:.3f} s: "
            f"{gib(apparent)} apparent, {gib(files.disk_bytes)} allocated on disk "
            f"({files.disk_bytes / transitions:,.0f} bytes per transition)",
            flush=True,
        )
        filler = Filler(buffer)
        started = time.perf_counter()
        filler.add(transitions)
        filled = time.perf_counter() - started
        print(f"filled {transitions:,} transitions in {filled:.1f} s", flush=True)
        agent._update(buffer)  # Adam's state, as in a real checkpoint
        checkpoints = run_dir / "checkpoints"
        results: dict[str, list[float]] = {}
        agent.replay = buffer
        results["after the fill, persisted"] = timed_checkpoints(agent, checkpoints, 1, 3)
        agent.replay = None
        results["after the fill, networks only"] = timed_checkpoints(agent, checkpoints, 10, 3)
        for round_index in range(3):
            filler.add(CHECKPOINT_EVERY)
            agent.replay = buffer
            one = timed_checkpoints(agent, checkpoints, 100 + round_index, 1)
            results.setdefault("steady (50,000 new), persisted", []).extend(one)
            agent.replay = None
            one = timed_checkpoints(agent, checkpoints, 200 + round_index, 1)
            results.setdefault("steady (50,000 new), networks only", []).extend(one)
        size = checkpoint.list_checkpoints(checkpoints)[-1].stat().st_size
        print(f"checkpoint file: {size / 2**20:.1f} MiB (networks, Adam, replay indices)")
        print("| checkpoint | seconds (median) | runs |")
        print("| --- | --- | --- |")
        for name, runs in results.items():
            listed = ", ".join(f"{value:.3f}" for value in runs)
            print(f"| {name} | {statistics.median(runs):.3f} | {listed} |")
        if copy:
            started = time.perf_counter()
            with open(run_dir / "copy.npz", "wb") as handle:
                arrays = {
                    name: getattr(buffer, name)
                    for name in ("frames", "positions", "actions", "rewards", "has_next")
                }
                arrays.update(terminal=buffer.terminal, final=buffer.final)
                np.savez(handle, **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            copied = time.perf_counter() - started
            size = (run_dir / "copy.npz").stat().st_size
            print(f"a copying checkpoint (np.savez + fsync): {copied:.1f} s, {gib(size)}")
        del buffer, files


def replay_ops_part(transitions: int, rounds: int, root: Path) -> None:
    """The buffer's own cost per agent step, persisted or in memory, without the network:
    `add` (one transition, first pass over fresh pages, as each ring pass is for files the
    kernel has written back) and `sample(32)` (one update's batch), alternating."""
    adds, samples = 20_000, 2_000
    results: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    for round_index in range(rounds):
        order = (True, False) if round_index % 2 == 0 else (False, True)
        for persist in order:
            with tempfile.TemporaryDirectory(dir=root) as temporary:
                files = ReplayFiles(Path(temporary), remedy="-") if persist else None
                margin = checkpoint_margin(CHECKPOINT_EVERY, 1, transitions) if persist else 0
                buffer = ReplayBuffer(
                    capacity=transitions,
                    num_envs=1,
                    observation_shape=(4, 84, 84),
                    dtype=np.uint8,
                    stacked=True,
                    margin=margin,
                    files=files,
                )
                filler = Filler(buffer)
                started = time.perf_counter()
                filler.add(adds)
                add = (time.perf_counter() - started) / adds * 1e6
                started = time.perf_counter()
                for _ in range(samples):
                    buffer.sample(32)
                sample = (time.perf_counter() - started) / samples * 1e6
                started = time.perf_counter()
                buffer.state_dict()
                flush = time.perf_counter() - started
                del buffer, files
            measured = results[persist]
            for name, value in (("add", add), ("sample", sample), ("flush", flush)):
                measured.setdefault(name, []).append(value)
            label = "persisted" if persist else "in memory"
            print(
                f"round {round_index + 1}: {label}: add {add:.1f} us, sample(32) {sample:.1f} us,"
                f" state_dict after {adds:,} adds {flush * 1000:.1f} ms",
                flush=True,
            )
    print(f"replay of {transitions:,}, {adds:,} adds and {samples:,} samples, {rounds} rounds")
    print("| replay | add (us, median) | sample(32) (us, median) | per agent step (us) |")
    print("| --- | --- | --- | --- |")
    per_step = {}
    for persist, label in ((False, "in memory"), (True, "persisted")):
        add = statistics.median(results[persist]["add"])
        sample = statistics.median(results[persist]["sample"])
        per_step[persist] = add + sample / 4  # an update of batch 32 every 4 steps
        print(f"| {label} | {add:.1f} | {sample:.1f} | {per_step[persist]:.1f} |")
    extra = per_step[True] - per_step[False]
    print(
        f"persisted costs {extra:+.1f} us per agent step: {extra / 10_000:+.2%} of a 10 ms "
        "agent step (100 steps/s with learning on 2 CPU cores)"
    )


def rlkit_speed(steps: int, warmup: int, buffer_size: int, persist: bool, root: Path) -> float:
    import rlkit

    with tempfile.TemporaryDirectory(dir=root) as out:
        result = rlkit.train(
            "dqn",
            env="Breakout",
            steps=steps,
            seed=0,
            out_dir=out,
            name="speed",
            wandb="disabled",
            progress=False,
            log_every=warmup,
            checkpoint_every=1_000,
            threads=torch.get_num_threads(),
            hparams={
                "buffer_size": buffer_size,
                "learning_starts": warmup,
                "persist_replay": persist,
                "epsilon": {"kind": "constant", "start": EPSILON, "end": EPSILON},
            },
        )
        rows = [row for row in read_metrics(result.run_dir / "metrics.jsonl") if "time/sps" in row]
    start = next(row for row in rows if row["step"] == warmup)
    end = rows[-1]
    return float((end["step"] - start["step"]) / (end["time/elapsed"] - start["time/elapsed"]))


def speed_part(args: argparse.Namespace, root: Path) -> None:
    runs: dict[bool, list[float]] = {True: [], False: []}
    for round_index in range(args.rounds):
        order = (True, False) if round_index % 2 == 0 else (False, True)
        for persist in order:
            speed = rlkit_speed(args.steps, args.warmup, args.buffer_size, persist, root)
            runs[persist].append(speed)
            label = "persisted" if persist else "in memory"
            print(f"round {round_index + 1}: {label} {speed:.1f} steps/s", flush=True)
    medians = {persist: statistics.median(values) for persist, values in runs.items()}
    print(
        f"Breakout, 1 env, Nature CNN, batch 32 every 4 steps, replay {args.buffer_size:,}, "
        f"checkpoints every 1,000 steps; {args.steps - args.warmup} steps measured after "
        f"{args.warmup}, {args.rounds} rounds alternating (median)"
    )
    print("| replay | agent steps/s (median) | runs |")
    print("| --- | --- | --- |")
    for persist, label in ((False, "in memory (persist_replay=false)"), (True, "persisted")):
        listed = ", ".join(f"{value:.1f}" for value in runs[persist])
        print(f"| {label} | {medians[persist]:.1f} | {listed} |")
    print(f"ratio persisted / in memory: {medians[True] / medians[False]:.3f} (target >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--copy", action="store_true", help="also time a copying checkpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--buffer-size", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--skip-disk", action="store_true")
    parser.add_argument("--skip-ops", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--dir", default=".", help="where the temporary run dirs go")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.dir)
    usage = shutil.disk_usage(root)
    print(
        f"{date.today()}, commit {commit()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} with {args.threads} threads; load average "
        f"{load_average()} at the start; {gib(usage.free)} free on {root.resolve()}",
        flush=True,
    )
    if not args.skip_disk:
        disk_part(args.transitions, root, args.copy)
    if not args.skip_ops:
        replay_ops_part(args.transitions, args.rounds, root)
    if not args.skip_speed:
        speed_part(args, root)
    print(f"load average {load_average()} at the end")


if __name__ == "__main__":
    main()
