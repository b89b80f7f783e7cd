"""Presets by task (`rlkit.presets`, `agents/presets.py`): the default command and the
shipped config files are one thing, a preset is named where it is used, and a task with
no entry gets the agent's own defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
import yaml

from rlkit.agent import load_agent
from rlkit.config import load_yaml
from rlkit.errors import UserError
from rlkit.presets import Preset, choose
from rlkit.resolve import Layer, file_layer, resolve

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Files that are variants of a task's default on purpose (named, with the reason):
VARIANTS = {
    "dqn/atari_nature.yaml": "the Nature paper's deterministic ALE and RMSProp; the default "
    "for ALE games is Machado et al. 2018's sticky actions with Adam (dqn/atari.yaml)",
    "a3c/atari.yaml": "the paper's 16 workers and deterministic ALE with episodic life; the "
    "default command keeps 2 workers and the ALE defaults (Machado et al. 2018)",
    "rpg/tmaze_discrete.yaml": "the T-maze's Discrete-observation variant (env_kwargs "
    "observations: discrete, length 5) with tmaze.yaml's values, for CI's time",
}


def shipped() -> list[Path]:
    return sorted(path for path in CONFIGS.rglob("*.yaml") if "sweeps" not in path.parts)


def key(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("path", shipped(), ids=key)
def test_the_default_command_trains_what_the_shipped_config_trains(path: Path) -> None:
    """`rlkit run AGENT --env ENV` resolves to what `--config FILE` resolves to."""
    if key(path) in VARIANTS:
        pytest.skip(f"a declared variant: {VARIANTS[key(path)]}")
    data = load_yaml(path)
    agent, agent_cls = data["agent"], load_agent(data["agent"])
    task = {
        "env": data["env"],
        **({"env_kwargs": data["env_kwargs"]} if "env_kwargs" in data else {}),
    }
    by_file = resolve(agent, agent_cls, [file_layer(path)[1]])
    by_command = resolve(agent, agent_cls, [Layer(settings=task)])
    assert by_command.agent_config.model_dump() == by_file.agent_config.model_dump()
    assert by_command.settings.model_dump() == by_file.settings.model_dump()
    # and the file holds every value itself: with no preset under it, it trains the same
    alone = resolve(agent, agent_cls, [Layer(settings={"preset": "none"}), file_layer(path)[1]])
    assert alone.agent_config.model_dump() == by_command.agent_config.model_dump()
    unnamed = {"preset": "none"}
    assert alone.settings.model_dump() == {**by_command.settings.model_dump(), **unnamed}


def test_every_variant_is_a_shipped_file() -> None:
    assert set(VARIANTS) <= {key(path) for path in shipped()}


def test_a_preset_is_chosen_by_id_before_family_and_none_is_the_defaults() -> None:
    box = gym.spaces.Box(-1.0, 1.0, (3,))
    family = Preset("x/any-box", "test", family=lambda o, a: isinstance(a, gym.spaces.Box))
    by_id = Preset("x/hopper", "test", envs=("Hopper-v*",), hparams={"gamma": 0.5})
    table = (family, by_id)
    assert choose("x", table, "auto", "Hopper-v5", box, box) is by_id
    assert choose("x", table, "auto", "Walker2d-v5", box, box) is family
    assert choose("x", table, "auto", "CartPole-v1", box, gym.spaces.Discrete(2)) is None
    assert choose("x", table, "none", "Hopper-v5", box, box) is None
    assert choose("x", table, "x/any-box", "Hopper-v5", box, box) is family
    with pytest.raises(
        UserError,
        match=r"preset 'x/hoper' is not one of x's \(did you mean "
        r"'x/hopper'\?\); accepted: auto, none, x/any-box, x/hopper",
    ):
        choose("x", table, "x/hoper", "Hopper-v5", box, box)


def test_a_preset_may_not_choose_what_a_run_chooses() -> None:
    with pytest.raises(ValueError, match="sets \\['seed'\\]"):
        Preset("x/bad", "test", settings={"seed": 3})


def test_the_run_records_the_preset_and_none_gives_the_defaults() -> None:
    trpo = load_agent("trpo")
    hopper = resolve("trpo", trpo, [Layer(settings={"env": "Hopper-v5"})])
    assert hopper.settings.preset == "trpo/mujoco" and hopper.settings.steps == 1_000_000
    assert hopper.agent_config.normalize_observations and hopper.agent_config.cg_iterations == 25
    assert hopper.settings.workers == 1 and hopper.agent_config.envs_per_worker == 2
    plain = resolve("trpo", trpo, [Layer(settings={"env": "Hopper-v5", "preset": "none"})])
    assert plain.settings.preset == "none"
    defaults = trpo.Config().model_dump(exclude={"encoder"})  # resolve names the torso
    assert plain.agent_config.model_dump(exclude={"encoder"}) == defaults
    assert plain.settings.workers == 2 and plain.settings.steps == trpo.default_steps
    flags = Layer(settings={"env": "Hopper-v5", "workers": 3}, hparams={"gamma": 0.9})
    mine = resolve("trpo", trpo, [flags])
    assert mine.settings.workers == 3 and mine.agent_config.gamma == 0.9, "layers win"
    unknown = resolve("trpo", trpo, [Layer(settings={"env": "MountainCarContinuous-v0"})])
    assert unknown.settings.preset == "none" and unknown.agent_config.gamma == 0.99


@pytest.mark.slow
def test_cli_names_the_preset_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    rlkit = [sys.executable, "-m", "rlkit"]
    bad = subprocess.run(
        [*rlkit, "run", "trpo", "--env", "CartPole-v1", "--set", "preset=trpo/cartpol",
         "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        "rlkit: preset 'trpo/cartpol' is not one of trpo's (did you mean 'trpo/cartpole'?); "
        "accepted: auto, none, trpo/cartpole, trpo/pendulum, trpo/acrobot, trpo/mountaincar, "
        "trpo/lunarlander, trpo/lunarlander-continuous, trpo/halfcheetah, trpo/swimmer, "
        "trpo/humanoid, trpo/mujoco, trpo/minigrid"
    )
    assert not any(tmp_path.iterdir()), "nothing written"
    ran = subprocess.run(
        [*rlkit, "run", "trpo", "--env", "Hopper-v5", "--steps", "64", "--wandb", "disabled",
         "--out-dir", str(tmp_path), "--name", "h"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "rlkit: preset trpo/mujoco: RL Baselines3 Zoo" in ran.stderr
    assert "observations normalised" in ran.stderr and "rewards scaled" in ran.stderr
    config: dict[str, Any] = yaml.safe_load((tmp_path / "h" / "config.yaml").read_text())
    assert config["preset"] == "trpo/mujoco"
    assert config["hparams"]["normalize_observations"] is True
