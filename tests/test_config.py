"""Config: merge order, --set parsing, strict validation with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rlkit.agents.qlearning import QLearningConfig
from rlkit.config import load_yaml, merge, parse_override, split_overrides, validate
from rlkit.errors import UserError
from rlkit.schedules import Schedule
from rlkit.settings import RunSettings


def test_override_values_are_yaml_scalars_never_code() -> None:
    assert parse_override("gamma=0.9") == ("gamma", 0.9)
    assert parse_override("steps=200000") == ("steps", 200000)
    assert parse_override("progress=false") == ("progress", False)
    assert parse_override("name=__import__('os').system('x')") == (
        "name",
        "__import__('os').system('x')",
    )
    assert parse_override("env_kwargs={map_name: 8x8}") == ("env_kwargs", {"map_name": "8x8"})


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-5", 1e-5), ("3E4", 3e4), ("-2.5e-3", -2.5e-3), (".5e1", 5.0), ("1.0e-5", 1e-5)],
)
def test_exponents_without_a_dot_are_floats(text: str, value: float, tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-5 as a string; users write it as SB3 and the papers do
    assert parse_override(f"optimizer_eps={text}") == ("optimizer_eps", value)
    config = tmp_path / "config.yaml"
    config.write_text(f"hparams:\n  optimizer_eps: {text}\n")
    assert load_yaml(config) == {"hparams": {"optimizer_eps": value}}
    for word in ("e5", "-e5", ".e5", "1e5x"):  # not numbers: stay strings
        assert parse_override(f"name={word}") == ("name", word)


def test_split_overrides_routes_agent_and_run_keys() -> None:
    run, agent, origins = split_overrides(
        ["gamma=0.5", "epsilon.end=0.05", "seed=4", "atari.frame_stack=2"],
        QLearningConfig,
        RunSettings,
    )
    assert run == {"seed": 4, "atari": {"frame_stack": 2}}
    assert agent == {"gamma": 0.5, "epsilon": {"end": 0.05}}
    assert origins["epsilon.end"] == "--set epsilon.end=0.05"


def test_nested_override_keeps_the_other_fields() -> None:
    defaults = QLearningConfig().model_dump()
    _, agent, _ = split_overrides(["epsilon.end=0.05"], QLearningConfig, RunSettings)
    config = QLearningConfig.model_validate(merge(defaults, agent))
    assert config.epsilon == Schedule(kind="linear", start=1.0, end=0.05, fraction=0.3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"gamma": "abc"}, "gamma must be a number (got 'abc')"),
        ({"gamma": True}, "gamma must be a number (got True)"),
        ({"gamma": 1.5}, "gamma must be less than or equal to 1"),
        ({"epsilon": {"kind": "linear", "start": 1, "end": 0, "fraction": 0}}, "epsilon.fraction"),
        ({"epsilon": 0.1}, "epsilon must be a mapping"),
        ({"alpha": 0.1}, "unknown key 'alpha' for qlearning; accepted: epsilon, gamma"),
        (
            {"epsilon": {"ends": 0.1}},
            "unknown key 'epsilon.ends' for qlearning (did you mean 'end'?)",
        ),
    ],
)
def test_validation_errors_name_the_key(data: dict, message: str) -> None:
    with pytest.raises(UserError) as raised:
        validate(QLearningConfig, data, {}, "qlearning")
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_run_settings_reject_bad_values() -> None:
    base = {"agent": "qlearning", "env": "Taxi-v4", "steps": 10}
    assert validate(RunSettings, base, {}, "run settings").seed == 0
    for bad, fragment in [
        ({"steps": 0}, "steps must be greater than 0"),
        ({"seed": -1}, "seed must be greater than or equal to 0"),
        ({"wandb": "cloud"}, "wandb must be 'offline', 'online' or 'disabled'"),
        ({"steps": "10"}, "steps must be an integer"),
    ]:
        with pytest.raises(UserError, match=fragment):
            validate(RunSettings, {**base, **bad}, {"steps": "--steps"}, "run settings")


def test_yaml_loading(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("env: Taxi-v4  # comment\nhparams:\n  gamma: 0.9\n")
    assert load_yaml(good) == {"env": "Taxi-v4", "hparams": {"gamma": 0.9}}
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        load_yaml(listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_yaml(empty) == {}


def test_merge_is_recursive_and_later_wins() -> None:
    assert merge({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 5}, "e": 6}) == {
        "a": 1,
        "b": {"c": 5, "d": 3},
        "e": 6,
    }


def test_precedence_defaults_file_flags_set(tmp_path: Path) -> None:
    from rlkit.training import train

    file = tmp_path / "taxi.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "agent": "qlearning",
                "env": "Taxi-v4",
                "steps": 500,
                "seed": 1,
                "hparams": {"gamma": 0.8, "initial_value": 1.0},
            }
        )
    )
    result = train(
        None,
        config=file,
        seed=2,
        overrides=["gamma=0.7"],
        out_dir=str(tmp_path),
        wandb="disabled",
        progress=False,
    )
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["steps"] == 500  # file over default
    assert saved["seed"] == 2  # flag over file
    assert saved["hparams"]["gamma"] == 0.7  # --set over file
    assert saved["hparams"]["initial_value"] == 1.0  # file over default
    assert saved["hparams"]["epsilon"]["start"] == 1.0  # default


def test_schedules() -> None:
    linear = Schedule(kind="linear", start=1.0, end=0.0, fraction=0.5)
    assert [linear.value(s, 100) for s in (0, 25, 50, 100)] == [1.0, 0.5, 0.0, 0.0]
    exponential = Schedule(kind="exponential", start=1.0, end=0.01)
    assert exponential.value(50, 100) == pytest.approx(0.1)
    assert Schedule(kind="constant", start=0.3, end=0.0).value(99, 100) == 0.3
    with pytest.raises(ValueError, match="exponential schedule needs start > 0"):
        Schedule(kind="exponential", start=1.0, end=0.0)


def test_partial_nested_settings_merge_into_defaults(tmp_path: Path) -> None:
    from rlkit.training import train

    file = tmp_path / "partial.yaml"
    file.write_text(
        "agent: qlearning\nenv: Taxi-v4\nsteps: 300\nhparams:\n  epsilon:\n    end: 0.2\n"
    )
    result = train(None, config=file, out_dir=str(tmp_path), wandb="disabled", progress=False)
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["hparams"]["epsilon"] == {
        "kind": "linear",
        "start": 1.0,
        "end": 0.2,
        "fraction": 0.3,
    }


LAUGHS = (  # "billion laughs": 9 levels of 9 aliases, a few hundred bytes
    'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    + "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    + "hparams: {gamma: *l8}\n"
)


def test_yaml_anchors_and_aliases_are_refused_in_files(tmp_path: Path) -> None:
    assert len(LAUGHS) < 600
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text(LAUGHS)
    with pytest.raises(UserError) as raised:
        load_yaml(bomb)
    assert str(raised.value) == (
        f"config file '{bomb}' line 1: YAML anchors and aliases (&name, *name) are not "
        "accepted; write each value out"
    )
    alias_only = tmp_path / "alias.yaml"
    alias_only.write_text("env: Taxi-v4\nname: *undefined\n")
    with pytest.raises(UserError, match="line 2: YAML anchors and aliases"):
        load_yaml(alias_only)
    deep = tmp_path / "deep.yaml"
    deep.write_text("hparams: " + "[" * 3000)
    with pytest.raises(UserError, match="nested too deeply"):
        load_yaml(deep)


@pytest.mark.parametrize(
    "text",
    [
        "env_kwargs=&a [1, 2]",
        "name=*a",
        "env_kwargs={a: &x [1, 1], b: [*x, *x], c: [*b, *b]}",
    ],
)
def test_yaml_anchors_and_aliases_are_refused_in_overrides(text: str) -> None:
    with pytest.raises(UserError, match=r"YAML anchors and aliases .* not accepted; quote a value"):
        parse_override(text)
    assert parse_override("name='*a'") == ("name", "*a")  # quoted: the value itself
    assert parse_override("name=a&b*c") == ("name", "a&b*c")  # not at a node's start


def test_errors_quote_user_values_cut_to_a_readable_length() -> None:
    long = "x" * 100_000
    with pytest.raises(UserError) as raised:
        validate(QLearningConfig, {"gamma": long}, {"gamma": f"--set gamma={long}"}, "qlearning")
    message = str(raised.value)
    assert len(message) < 350 and "\n" not in message, message[:500]
    assert message.endswith(f"gamma must be a number (got '{'x' * 76}...)")  # repr cut to 80
    for item in (f"{long}=1", f"gamma{long}", f"{long}.x=1"):
        with pytest.raises(UserError) as raised:
            split_overrides([item], QLearningConfig, RunSettings)
        assert len(str(raised.value)) < 600 and "..." in str(raised.value)  # + accepted keys
    with pytest.raises(UserError) as raised:
        validate(QLearningConfig, {long: 1}, {}, "qlearning")
    assert len(str(raised.value)) < 250 and "unknown key 'xxx" in str(raised.value)
    with pytest.raises(UserError) as raised:
        validate(QLearningConfig, {"gamma": 0.9, "epsilon": {"kind": "linear\nx"}}, {}, "q")
    assert "\n" not in str(raised.value) and "'linear\\nx'" in str(raised.value)
