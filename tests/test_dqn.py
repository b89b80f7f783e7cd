"""DQN: networks, the loss on a hand-made batch, bad input, and the learning targets."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from rlkit.agents.dqn import DQNConfig, td_loss
from rlkit.cli import main
from rlkit.networks import DuelingHead, NatureCNN, QNetwork, build_torso, parameter_count
from rlkit.training import evaluate_run
from tests.conftest import run_cli
from tests.test_cli_errors import assert_user_error


def test_nature_cnn_has_the_papers_parameter_count() -> None:
    space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    network = QNetwork(build_torso(space, [256]), 4, dueling=False)
    assert isinstance(network.torso, NatureCNN)
    assert parameter_count(network) == 1_686_180


def test_cnn_takes_uint8_and_scales_it() -> None:
    torch.manual_seed(0)
    cnn = NatureCNN()
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    expected = cnn.fc(cnn.conv(frames.float() / 255.0))
    torch.testing.assert_close(cnn(frames), expected)


def test_dueling_head_centres_advantages() -> None:
    head = DuelingHead(3, 4)
    features = torch.randn(5, 3)
    q = head(features)
    value = head.value(features)
    advantage = head.advantage(features)
    torch.testing.assert_close(q, value + advantage - advantage.mean(dim=1, keepdim=True))
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)


def linear(weights: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights))
    return layer


@pytest.mark.parametrize(("double", "expected_loss"), [(False, 4.0), (True, 2.2)])
def test_td_loss_on_a_hand_made_batch(double: bool, expected_loss: float) -> None:
    online = linear([[1.0, 0.0], [0.0, 2.0]])  # Q(s=[1,0]) = [1, 0];  Q(s'=[0,1]) = [0, 2]
    target = linear([[0.0, 5.0], [0.0, 3.0]])  # Q_target(s'=[0,1]) = [5, 3]
    batch = {
        "observations": torch.tensor([[1.0, 0.0]]),
        "actions": torch.tensor([0]),
        "rewards": torch.tensor([1.0]),
        "next_observations": torch.tensor([[0.0, 1.0]]),
        "discounts": torch.tensor([0.9]),
    }
    loss, metrics = td_loss(batch, online, target, DQNConfig(double_dqn=double))
    # max target: 1 + 0.9 * 5 = 5.5; Double DQN: online picks action 1, target values it 3:
    # 1 + 0.9 * 3 = 3.7. Q(s, 0) = 1, so TD errors 4.5 and 2.7; Huber = |error| - 0.5.
    assert float(loss.detach()) == pytest.approx(expected_loss)
    assert float(metrics["train/q_mean"]) == pytest.approx(1.0)
    batch["discounts"] = torch.tensor([0.0])  # terminal: target is the reward alone
    loss, _ = td_loss(batch, online, target, DQNConfig(double_dqn=double))
    assert float(loss.detach()) == pytest.approx(0.0)


def test_refuses_continuous_actions(tmp_path: Path) -> None:
    result = run_cli("run", "dqn", "--env", "Pendulum-v1", "--out-dir", str(tmp_path))
    assert_user_error(
        result, "dqn needs a Discrete action space", "Pendulum-v1 has Box(-2.0, 2.0, (1,)"
    )
    assert not any(tmp_path.iterdir())


def test_misspelled_game_gets_a_suggestion(tmp_path: Path) -> None:
    result = run_cli("run", "dqn", "--env", "Breakuot", "--out-dir", str(tmp_path))
    assert_user_error(result, "unknown env 'Breakuot'", "did you mean 'Breakout'")


def test_replay_buffer_too_big_for_memory(tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "dqn",
        "--env",
        "Breakout",
        "--set",
        "buffer_size=100000000",
        "--wandb",
        "disabled",
        "--out-dir",
        str(tmp_path),
    )
    assert_user_error(result, "replay buffer", "100,000,000", "buffer_size")
    assert not any(tmp_path.iterdir()), "the refused run left a run directory behind"


@pytest.mark.slow
def test_cartpole_reaches_475(tmp_path: Path) -> None:
    """CartPole-v1: greedy mean return >= 475 over 20 episodes within 100,000 env steps."""
    code = main(
        [
            "run",
            "dqn",
            "--env",
            "CartPole-v1",
            "--seed",
            "0",
            "--wandb",
            "disabled",
            "--no-progress",
            "--out-dir",
            str(tmp_path),
            "--name",
            "cartpole",
        ]
    )
    assert code == 0
    run_dir = tmp_path / "cartpole"
    from rlkit import load

    loaded = load(run_dir)
    assert loaded.step <= 100_000
    assert loaded.agent.config.eval_epsilon == 0.0  # the greedy policy
    stats = evaluate_run(run_dir, episodes=20)
    assert stats.mean >= 475, stats


@pytest.mark.slow
def test_breakout_end_to_end(tmp_path: Path) -> None:
    """Breakout: train 2,000 steps, checkpoint, resume, evaluate with a video, on the CPU."""
    common = ["--wandb", "offline", "--no-progress", "--out-dir", str(tmp_path)]
    small = [
        "--set",
        "buffer_size=5000",
        "--set",
        "learning_starts=500",
        "--set",
        "target_update_period=500",
        "--checkpoint-every",
        "1000",
    ]
    result = run_cli(
        "run", "dqn", "--env", "Breakout", "--steps", "1200", "--name", "breakout", *small, *common
    )
    assert result.returncode == 0, result.stderr
    assert "sticky_action_prob=0.25" in result.stderr  # settings printed once at start
    run_dir = tmp_path / "breakout"
    result = run_cli(
        "run", "--resume", str(run_dir), "--steps", "2000", "--wandb", "offline", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert "from step 1200" in result.stderr
    from rlkit import load

    assert load(run_dir).step == 2000
    result = run_cli("eval", str(run_dir), "--episodes", "1", "--video")
    assert result.returncode == 0, result.stderr
    (video,) = (run_dir / "videos").glob("eval-step-*.mp4")
    assert video.stat().st_size > 10_000
    assert video.read_bytes()[4:8] == b"ftyp"  # an MP4 container
    assert "return mean" in result.stdout
