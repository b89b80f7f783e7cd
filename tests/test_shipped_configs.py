"""Every YAML file in configs/ loads and validates against its agent's config model
(sweeps: as `rlkit sweep` checks them before any trial)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlkit.agent import load_agent
from rlkit.config import load_yaml, merge, validate
from rlkit.environments import resolve_env_id
from rlkit.settings import RunSettings

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_configs() -> None:
    assert any(path.parent.name == "qlearning" for path in CONFIGS)


@pytest.mark.parametrize(
    "path", [p for p in CONFIGS if "sweeps" not in p.parts], ids=lambda p: p.name
)
def test_config_validates(path: Path) -> None:
    data = load_yaml(path)
    agent_cls = load_agent(data["agent"])
    assert path.parent.name == data["agent"], "configs/<agent>/ holds that agent's files"
    hparams = data.pop("hparams", {})
    validate(RunSettings, data, {}, str(path))
    validate(agent_cls.Config, merge(agent_cls.Config().model_dump(), hparams), {}, str(path))
    resolve_env_id(data["env"])
    assert "#" in path.read_text(), "configs cite the source of their values in comments"


SWEEPS = [path for path in CONFIGS if "sweeps" in path.parts]


def test_sweeps_are_shipped_for_a_tabular_a_value_based_and_a_policy_gradient_agent() -> None:
    agents = {load_yaml(path)["run"]["agent"] for path in SWEEPS}
    assert {"qlearning", "dqn"} <= agents and agents & {"trpo", "a3c", "rpg"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_sweep_validates(path: Path, tmp_path: Path) -> None:
    from rlkit.sweep import load_sweep

    sweep = load_sweep(path, out_dir=tmp_path)
    assert sweep.name == path.stem and sweep.space
    assert "#" in path.read_text(), "sweeps explain their choices in comments"
    assert not tmp_path.joinpath(sweep.name).exists(), "validation writes nothing"
