"""NES: fitness shaping and the two update rules on known functions, the pool's shared
noise table and traffic, a worker lost mid-generation, and the learning targets.

Ray tests share the session's embedded local Ray (`ray_local`). Learning tests are
`slow`; each fits the 2-core CI with `threads=1`.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import rlkit
from rlkit.agents.nes import (
    NES,
    NESConfig,
    NESWorker,
    Task,
    centred_ranks,
    es_gradient,
    noise_table,
    snes_update,
    snes_utilities,
)
from rlkit.checkpoint import list_checkpoints
from rlkit.environments import EnvFactory
from rlkit.errors import UserError
from rlkit.evaluation import play_episode
from rlkit.logger import read_metrics
from rlkit.policies import flat_parameters, set_flat_parameters
from rlkit.pool import make_pool, map_chunks
from rlkit.seeding import derive_seed
from rlkit.signals import LearningSignals
from rlkit.training import evaluate_run
from rlkit.workers import WorkerSetup
from tests.conftest import run_cli
from tests.ray_processes import kill_one_worker_at, ray_worker_pids


def test_centred_ranks_map_returns_to_their_rank_in_minus_half_to_half() -> None:
    returns = np.array([[10.0, -3.0], [7.0, 200.0]])
    np.testing.assert_allclose(centred_ranks(returns), [[1 / 6, -0.5], [-1 / 6, 0.5]])


def test_snes_utilities_sum_to_zero_and_reward_only_the_better_half() -> None:
    returns = np.array([3.0, 9.0, 1.0, 5.0, 7.0, 2.0])
    utilities = snes_utilities(returns)
    assert abs(utilities.sum()) < 1e-12
    order = np.argsort(-returns)  # best first
    assert np.all(np.diff(utilities[order]) <= 0)  # better return, larger utility
    # log(lambda/2 + 1) - log(k) is positive for the ranks k < 4 only
    assert np.allclose(utilities[order][3:], -1 / 6)


def quadratic_fitness(points: np.ndarray, optimum: np.ndarray) -> np.ndarray:
    return -((points - optimum) ** 2).sum(axis=-1)


def test_es_with_mirrored_noise_and_adam_finds_a_quadratics_optimum() -> None:
    rng = np.random.default_rng(0)
    optimum = np.array([1.5, -2.0, 0.5, 3.0])
    theta = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    adam = torch.optim.Adam([theta], lr=0.05)
    sigma = 0.1
    for _ in range(400):
        noise = rng.standard_normal((16, 4))
        centre = theta.detach().numpy()
        returns = np.stack(
            [
                quadratic_fitness(centre + sigma * noise, optimum),
                quadratic_fitness(centre - sigma * noise, optimum),
            ],
            axis=1,
        )
        theta.grad = torch.from_numpy(-es_gradient(returns, noise, sigma))
        adam.step()
    assert np.abs(theta.detach().numpy() - optimum).max() < 0.1


def test_snes_finds_a_quadratics_optimum_and_shrinks_sigma_there() -> None:
    rng = np.random.default_rng(1)
    optimum = np.array([1.5, -2.0, 0.5, 3.0])
    mu, sigma = np.zeros(4), np.ones(4)
    eta_sigma = (3 + np.log(4)) / (5 * np.sqrt(4))
    for _ in range(300):
        samples = rng.standard_normal((8, 4))
        returns = quadratic_fitness(mu + sigma * samples, optimum)
        mu, sigma = snes_update(mu, sigma, returns, samples, eta_mu=1.0, eta_sigma=eta_sigma)
    assert np.abs(mu - optimum).max() < 0.01
    assert sigma.max() < 0.01  # the search distribution contracted onto the optimum


def test_noise_table_is_the_same_for_the_same_seed() -> None:
    first, again, other = noise_table(3, 1000), noise_table(3, 1000), noise_table(4, 1000)
    assert first.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert abs(first.mean()) < 0.1 and abs(first.std() - 1) < 0.1


def cartpole_workers(count: int, config: NESConfig) -> list[dict[str, Any]]:
    setups = [
        WorkerSetup(index, index, index, EnvFactory("CartPole-v1"), LearningSignals(), None)
        for index in range(count)
    ]
    return [{"setup": setup, "config": config} for setup in setups]


def evaluate(pool: Any, search: Any, tasks: list[Task], max_steps: int) -> Any:
    return map_chunks(pool, "evaluate", tasks, shared=search, args=(0, max_steps))


def test_evaluations_return_in_task_order_whichever_worker_ran_them() -> None:
    config = NESConfig(hidden=[8], noise_table_size=10_000)
    noise = noise_table(0, config.noise_table_size)
    centre = np.zeros(4 * 8 + 8 + 8 * 2 + 2, dtype=np.float32)
    tasks = [Task(offset, sign, 100 + offset) for offset in (0, 500, 900) for sign in (1.0, -1.0)]
    outcomes = []
    for workers in (1, 3):
        with make_pool(
            NESWorker,
            cartpole_workers(workers, config),
            backend="inprocess",
            shared={"noise": noise},
        ) as pool:
            outcomes.append(evaluate(pool, (centre, 0.5), tasks, 500).results)
    one, three = outcomes
    assert one == three and len(one) == len(tasks)
    assert len({episode.total for episode in one}) > 1  # the perturbations act differently


def test_traffic_per_evaluation_does_not_grow_with_the_parameter_count() -> None:
    """Workers get the search distribution once per generation and tasks of three numbers;
    they send back two: growing the network grows only the once-per-worker part."""
    per_task = {}
    for hidden in ([8], [256, 256]):
        config = NESConfig(hidden=hidden, noise_table_size=200_000)
        noise = noise_table(0, config.noise_table_size)
        with make_pool(
            NESWorker, cartpole_workers(2, config), backend="inprocess", shared={"noise": noise}
        ) as pool:
            size = sum(p.numel() for p in pool._workers[0].params)  # type: ignore[attr-defined]
            centre = np.zeros(size, dtype=np.float32)
            sizes = {}
            for count in (8, 32):
                tasks = [Task(offset, 1.0, offset) for offset in range(count)]
                chunked = evaluate(pool, (centre, 0.1), tasks, 20)
                sent = chunked.bytes_sent
                sizes[count] = sent + chunked.bytes_received
                assert sent >= 2 * centre.nbytes  # the parameters went to each worker once
        per_task[size] = (sizes[32] - sizes[8]) / 24
    small, large = sorted(per_task)
    assert large > 50 * small  # 66,306 vs 58 parameters
    assert per_task[large] < 2 * per_task[small] + 8
    assert per_task[large] < 100  # bytes per extra evaluation, both ways


def test_population_must_be_even_for_mirrored_sampling(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="population 7 must be even"):
        rlkit.train(
            "nes",
            env="CartPole-v1",
            steps=1000,
            out_dir=str(tmp_path),
            wandb="disabled",
            overrides=["population=7"],
        )
    assert not any(tmp_path.iterdir())  # refused before a run dir was kept


def test_bad_variant_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli(
        "run", "nes", "--env", "CartPole-v1", "--set", "variant=cma", "--out-dir", str(tmp_path)
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "variant" in result.stderr
    assert "'es'" in result.stderr and "'snes'" in result.stderr


def settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "env": "CartPole-v1",
        "seed": 0,
        "out_dir": str(tmp_path),
        "wandb": "disabled",
        "progress": False,
        "threads": 1,
        "workers": 2,
        "config": "configs/nes/cartpole.yaml",
    }
    values.update(overrides)
    return values


@pytest.mark.slow
def test_ray_and_inprocess_runs_learn_the_same(ray_local: float, tmp_path: Path) -> None:
    """Episodes are seeded by generation and pair, not by worker: the backend and the
    order in which workers finish change nothing."""
    runs = [
        rlkit.train("nes", **settings(tmp_path, name=pool, steps=6_000, pool=pool))
        for pool in ("ray", "inprocess")
    ]
    saved = [
        torch.load(list_checkpoints(run.run_dir / "checkpoints")[-1], weights_only=False)
        for run in runs
    ]
    assert saved[0]["step"] == saved[1]["step"] == 6_000
    torch.testing.assert_close(saved[0]["agent"]["centre"], saved[1]["agent"]["centre"])


def test_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    """Cut a finished run back to a middle checkpoint, as if killed there, and resume it:
    it ends where the uninterrupted run ended (centre, sigma and Adam state)."""
    straight = rlkit.train(
        "nes",
        **settings(
            tmp_path, name="a", steps=8_000, pool="inprocess", checkpoint_every=2_000,
            keep_checkpoints=10,
        ),
    )  # fmt: skip
    copy = tmp_path / "b"
    shutil.copytree(straight.run_dir, copy)
    saved = list_checkpoints(copy / "checkpoints")
    assert len(saved) >= 3
    for path in saved[2:]:
        path.unlink()
    resumed = rlkit.train("nes", resume=copy)
    assert resumed.step == 8_000
    final = [
        torch.load(list_checkpoints(run / "checkpoints")[-1], weights_only=False)["agent"]
        for run in (straight.run_dir, copy)
    ]
    for key in ("centre", "sigma", "adam", "generation", "step"):
        torch.testing.assert_close(final[0][key], final[1][key])


def test_selection_keeps_whichever_of_centre_and_kept_policy_plays_the_same_starts_better() -> None:
    """Each selection plays the centre and the kept policy on the same fresh starts (a
    seed stream of their own) and keeps the better; the policy acts with what is kept."""
    config = NESConfig(
        variant="snes", hidden=[8], select_every=1, select_episodes=3, noise_table_size=10_000
    )
    env = EnvFactory("CartPole-v1")(0)
    agent = NES(
        config, observation_space=env.observation_space, action_space=env.action_space, seed=5
    )
    rng = np.random.default_rng(0)
    candidates = [rng.normal(0.0, 1.0, agent.centre.size).astype(np.float32) for _ in range(4)]

    def replay(parameters: np.ndarray, generation: int) -> float:
        set_flat_parameters(agent.params, torch.from_numpy(parameters))
        starts = [derive_seed(5, "selection", index=generation * 3 + j) for j in range(3)]
        return float(np.mean([play_episode(agent, env, seed=seed).total for seed in starts]))

    noise = noise_table(0, config.noise_table_size)
    kept: np.ndarray | None = None
    outcomes = []
    with make_pool(
        NESWorker, cartpole_workers(2, config), backend="inprocess", shared={"noise": noise}
    ) as pool:
        for generation, centre in enumerate(candidates):
            agent.centre, agent._generation = centre, generation
            metrics = agent._select(pool, remaining=10**6)
            acting = flat_parameters(agent.params).numpy().copy()
            expected = {centre.tobytes(): replay(centre, generation)}
            if kept is not None:
                expected[kept.tobytes()] = replay(kept, generation)
            winner = max(expected, key=lambda key: expected[key])  # first (the centre) on ties
            assert metrics["train/selection_return"] == expected[centre.tobytes()]
            assert metrics["train/selected_return"] == expected[winner]
            assert agent.best_centre is not None and agent.best_centre.tobytes() == winner
            np.testing.assert_array_equal(acting, agent.best_centre)
            kept = agent.best_centre.copy()
            outcomes.append(winner == centre.tobytes())
    assert not all(outcomes[1:])  # the kept policy won a round: a real comparison


def test_a_run_with_selection_resumes_with_its_kept_policy(tmp_path: Path) -> None:
    """The kept policy is in the checkpoints: a run cut back to a middle checkpoint and
    resumed ends with the same kept policy and centre; loading one acts with it."""
    overrides = [
        "variant=snes", "population=6", "hidden=[8]", "select_every=2", "select_episodes=2",
        "noise_table_size=10000",
    ]  # fmt: skip
    straight = rlkit.train(
        "nes",
        **settings(
            tmp_path, name="a", steps=6_000, pool="inprocess", overrides=overrides,
            checkpoint_every=2_000, keep_checkpoints=10,
        ),
    )  # fmt: skip
    selections = [
        row
        for row in read_metrics(straight.run_dir / "metrics.jsonl")
        if "train/selection_return" in row
    ]
    assert any(row["train/selected_return"] > row["train/selection_return"] for row in selections)
    copy = tmp_path / "b"
    shutil.copytree(straight.run_dir, copy)
    for path in list_checkpoints(copy / "checkpoints")[1:]:
        path.unlink()
    resumed = rlkit.train("nes", resume=copy)
    assert resumed.step == straight.step == 6_000  # selection episodes within the budget
    final = [
        torch.load(list_checkpoints(run / "checkpoints")[-1], weights_only=False)["agent"]
        for run in (straight.run_dir, copy)
    ]
    for key in ("best_centre", "centre", "sigma", "step"):
        torch.testing.assert_close(final[0][key], final[1][key])
    config = NESConfig(
        variant="snes", population=6, hidden=[8], select_every=2, select_episodes=2,
        noise_table_size=10_000,
    )  # fmt: skip
    env = EnvFactory("CartPole-v1")(0)
    agent = NES(
        config, observation_space=env.observation_space, action_space=env.action_space, seed=0
    )
    first = torch.load(list_checkpoints(straight.run_dir / "checkpoints")[0], weights_only=False)
    agent.load_state_dict(first["agent"])
    acting = flat_parameters(agent.policy.policy_parameters()).numpy()
    np.testing.assert_array_equal(acting, first["agent"]["best_centre"].numpy())
    assert not np.array_equal(acting, first["agent"]["centre"].numpy())


@pytest.mark.long  # `pytest --long`; the worker-loss test below learns CartPole (es) on every run
@pytest.mark.parametrize("variant", ["es", "snes"])
def test_cartpole_reaches_475(ray_local: float, tmp_path: Path, variant: str) -> None:
    result = rlkit.train(
        "nes", **settings(tmp_path, name=variant, overrides=[f"variant={variant}"])
    )
    stats = evaluate_run(result.run_dir, episodes=20)
    assert stats.mean >= 475, stats


@pytest.mark.long  # `pytest --long`: a learning check the golden files and RESULTS.md already cover
def test_pendulum_reaches_minus_300(ray_local: float, tmp_path: Path) -> None:
    result = rlkit.train(
        "nes", **settings(tmp_path, env="Pendulum-v1", config="configs/nes/pendulum.yaml")
    )
    stats = evaluate_run(result.run_dir, episodes=20)
    assert stats.mean >= -300, stats


@pytest.mark.slow
def test_a_worker_lost_mid_generation_hands_its_work_to_the_others(
    ray_local: float, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """SIGKILL a worker while a generation is out: its chunk goes to a survivor, the
    generation completes, and (episodes being seeded by task) the run still learns."""
    killed: list[int] = []
    killer = threading.Thread(
        target=kill_one_worker_at,
        args=(tmp_path / "killed", 30_000, killed, "NESWorker"),
        daemon=True,
    )
    killer.start()
    result = rlkit.train("nes", **settings(tmp_path, name="killed", log_every=1_000))
    killer.join(timeout=1)
    assert len(killed) == 1 and killed[0] not in ray_worker_pids(os.getpid(), "NESWorker")
    err = capfd.readouterr().err
    assert "rlkit: nes: worker" in err and "returned to the learner" in err
    rows = read_metrics(result.run_dir / "metrics.jsonl")
    assert sum(row.get("train/lost_chunks", 0) for row in rows) >= 1
    assert max(row.get("workers/restarts", 0) for row in rows) == 1
    stats = evaluate_run(result.run_dir, episodes=20)
    assert stats.mean >= 475, stats


@pytest.mark.slow
def test_nes_searches_the_nature_cnn_on_atari_and_an_lstm_policy(tmp_path: Path) -> None:
    """The backbone's policies: Breakout frames get the Nature CNN (1.68M parameters in
    the search), the T-maze an LSTM core; both run, checkpoint and evaluate."""
    common = {"pool": "inprocess", "threads": 1, "wandb": "disabled", "progress": False}
    atari = rlkit.train(
        "nes", env="Breakout", steps=1_200, out_dir=str(tmp_path), name="breakout",
        hparams={"population": 4, "noise_table_size": 4_000_000}, **common,
    )  # fmt: skip
    tmaze = rlkit.train(
        "nes", env="rlkit/TMaze-v0", steps=3_000, out_dir=str(tmp_path), name="tmaze",
        hparams={"population": 8, "lstm_size": 8, "hidden": [8]}, **common,
    )  # fmt: skip
    assert (atari.step, tmaze.step) == (1_200, 3_000)
    cnn = rlkit.load(atari.run_dir).agent
    lstm = rlkit.load(tmaze.run_dir).agent
    assert any(isinstance(module, torch.nn.Conv2d) for module in cnn.policy.encoder.modules())
    assert cnn.centre.size > 1_600_000
    assert lstm.policy.lstm is not None and lstm.policy.lstm.hidden_size == 8
    assert evaluate_run(atari.run_dir, episodes=1).episodes == 1
    assert evaluate_run(tmaze.run_dir, episodes=5).episodes == 5
