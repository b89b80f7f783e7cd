"""Run settings: what every run has, whatever the agent (the agent's own are its Config)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, field_validator

from rlkit.atari import AtariSettings
from rlkit.config import StrictModel
from rlkit.environments import EnvWrapper

WandbMode = Literal["offline", "online", "disabled"]

FOLDER_NAME_RULE = "1 to 255 bytes, no '/', '\\' or control characters, not '.' or '..'"


def is_folder_name(name: str) -> bool:
    """`name` names one folder inside its parent (it cannot leave it, or be too long)."""
    return not (
        name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or any(ord(character) < 32 for character in name)
        or len(name.encode(errors="surrogateescape")) > 255
    )


class RunSettings(StrictModel):
    """Settings every run has, whatever the agent (`--set name=value` or flags)."""

    agent: str = Field(description="agent plugin name (see `rlkit list agents`)")
    env: str = Field(
        description="Gymnasium id, short name, module:Id, or module:function:Id (calls "
        "module.function() to register Id)"
    )
    steps: PositiveInt = Field(description="environment steps to train for, in total")
    preset: str = Field(
        default="auto",
        description="the agent's published values used under the config: auto (matched by env "
        "id, then by spaces), none (the agent's defaults), or a preset's name; config.yaml "
        "records the one used (see `rlkit describe AGENT`)",
    )
    seed: NonNegativeInt = Field(default=0, description="run seed; every RNG derives from it")
    env_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments passed to gymnasium.make"
    )
    env_wrappers: list[EnvWrapper] = Field(
        default_factory=list,
        description="Gymnasium wrappers applied in order around every env the run makes: "
        "[{wrapper: module:Class, kwargs: {...}}] (not for ALE games)",
    )
    num_envs: PositiveInt = Field(
        default=1, description="environments stepped together by agents that use a vector env"
    )
    workers: PositiveInt = Field(
        default=2, description="parallel workers for agents that use a worker pool"
    )
    pool: Literal["ray", "inprocess"] = Field(
        default="ray",
        description="worker pool backend; inprocess runs workers one after another in this "
        "process, for debugging",
    )
    address: str | None = Field(
        default=None,
        description="Ray cluster address host:port; default: RAY_ADDRESS, else an embedded "
        "local Ray",
    )
    atari: AtariSettings = Field(
        default_factory=AtariSettings, description="Atari preprocessing (ALE environments only)"
    )
    threads: PositiveInt | None = Field(
        default=None, description="torch CPU threads (default: the number of cores)"
    )
    out_dir: str = Field(default="runs", description="folder that holds run directories")
    name: str | None = Field(
        default=None, description="run directory name (default: <agent>-<env>-<date>-<time>)"
    )
    wandb: WandbMode = Field(default="offline", description="Weights & Biases mode")
    wandb_group: str | None = Field(
        default=None, description="W&B group of the run (a sweep groups its trials by its name)"
    )
    checkpoint_every: PositiveInt = Field(
        default=50_000, description="environment steps between periodic checkpoints"
    )
    keep_checkpoints: PositiveInt = Field(default=3, description="periodic checkpoints kept")
    log_every: PositiveInt = Field(
        default=10_000, description="environment steps between time/sps and train/ metric rows"
    )
    progress: bool = Field(default=True, description="show the progress bar (on a terminal)")
    eval_every: PositiveInt | None = Field(
        default=None,
        description="environment steps between evaluations of the greedy/evaluation policy "
        "during training, logged as eval/return (default: none)",
    )
    eval_episodes: PositiveInt = Field(
        default=10, description="episodes per evaluation during training (see eval_every)"
    )

    @field_validator("name")
    @classmethod
    def _one_folder_name(cls, name: str | None) -> str | None:
        if name is not None and not is_folder_name(name):
            raise ValueError(f"must be one folder name inside out_dir: {FOLDER_NAME_RULE}")
        return name
