"""A run directory read back: its config, a checkpoint restored, the agent loaded, evaluated.

`read_run` validates `config.yaml` (and checks the modules it names, `rlkit.trust`);
`_restore` loads the chosen checkpoint, or else the newest that loads, into an agent;
`load` and `evaluate_run` are what `rlkit.load`, `rlkit.evaluate` and `rlkit eval` call.
`--resume` (`rlkit.resume`) uses the same reading and restoring.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from rlkit import checkpoint
from rlkit.agent import check_spaces, load_agent
from rlkit.config import StrictModel, load_yaml, validate
from rlkit.environments import EnvFactory, set_rng_state
from rlkit.errors import UserError, describe_exception, shorten
from rlkit.evaluation import EvalStats, evaluate
from rlkit.run import CHECKPOINT_DIR
from rlkit.rundir import CONFIG_FILE, RECORD_FILE
from rlkit.seeding import run_seeds
from rlkit.settings import RunSettings
from rlkit.trust import check_run_modules


@dataclass(frozen=True)
class LoadedRun:
    agent: Any
    settings: RunSettings
    agent_config: StrictModel
    checkpoint: Path
    step: int


def _short(path: Path) -> str:
    """`checkpoints/step-....pt`: a checkpoint named inside its run dir."""
    return f"{path.parent.name}/{path.name}"


def read_run(run_dir: Path, *, trust_modules: bool = False) -> tuple[RunSettings, StrictModel, Any]:
    """The settings, agent config and agent class of an existing run directory.

    The modules its config names (`env: module:Id`, `env_wrappers`) must pass
    `rlkit.trust.check_run_modules` unless `trust_modules`: they are imported next.
    """
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / RECORD_FILE).is_file():
        raise UserError(
            f"'{run_dir}' is not an rlkit run directory (no {CONFIG_FILE} and {RECORD_FILE}); "
            "give a folder made by `rlkit run`"
        )
    return read_config(run_dir, trust_modules=trust_modules)


def read_config(
    directory: Path, *, trust_modules: bool = False
) -> tuple[RunSettings, StrictModel, Any]:
    """`read_run` of the `config.yaml` in `directory` (a run dir's, or a seed group's,
    which its seeds not yet started train from), by the same trust rule."""
    run_dir = directory
    data = load_yaml(run_dir / CONFIG_FILE)
    hparams = data.pop("hparams", {}) or {}
    origin = {key: f"{run_dir / CONFIG_FILE}" for key in data}
    settings = validate(RunSettings, data, origin, "run settings")
    if not trust_modules:
        check_run_modules(run_dir, settings)
    agent_cls = load_agent(settings.agent)
    if not isinstance(hparams, dict):
        raise UserError(f"{run_dir / CONFIG_FILE}: hparams must be a mapping of hyperparameters")
    agent_config = validate(agent_cls.Config, hparams, origin, settings.agent)
    return settings, agent_config, agent_cls


def _run_checkpoint(run_dir: Path, file: str | Path) -> Path:
    """`--checkpoint FILE`, which must be one of `run_dir`'s own checkpoints."""
    path = Path(file)
    directory = run_dir / CHECKPOINT_DIR
    inside = path.resolve().parent == directory.resolve()
    if not inside or not checkpoint.is_checkpoint_name(path.name):
        names = [p.name for p in checkpoint.list_checkpoints(directory)]
        listed = ", ".join(names[-4:]) if names else "none yet"
        raise UserError(
            f"--checkpoint {shorten(file, 200)}: not a checkpoint of this run; give one of "
            f"{shorten(directory, 200)}/: {listed}"
        )
    return directory / path.name


@dataclass(frozen=True)
class _Found:
    """The checkpoint a run continues from (or is evaluated at), and what was passed over."""

    path: Path
    saved: dict[str, Any]
    skipped: list[tuple[Path, str]]  # newer checkpoints that do not load, and why
    superseded: list[Path]  # newer checkpoints passed over for the one chosen


def _restore(
    run_dir: Path,
    settings: RunSettings,
    agent: Any,
    chosen: Path | None,
    *,
    env: gym.Env[Any, Any] | None = None,
) -> _Found:
    """Load `chosen`, or else the newest checkpoint of the run that loads, into `agent`
    (and its env RNG state into `env`); UserError, one line, when none does."""
    found = checkpoint.list_checkpoints(run_dir / CHECKPOINT_DIR)
    if chosen is not None:
        try:
            saved = _load_into(chosen, settings, agent, env)
        except UserError as error:
            earlier = [p.name for p in found if p != chosen][-3:]
            hint = f"; give another with --checkpoint: {', '.join(earlier)}" if earlier else ""
            raise UserError(f"{error}{hint}") from None
        step = int(saved["step"])
        newer = [path for path in found if checkpoint.step_of(path) > step]
        return _Found(chosen, saved, [], newer)
    if not found:
        raise UserError(
            f"'{run_dir}' has no checkpoint yet (checkpoints/step-*.pt); nothing to load"
        )
    skipped: list[tuple[Path, str]] = []
    for path in reversed(found):
        try:
            saved = _load_into(path, settings, agent, env)
        except UserError as error:
            reason = str(error).removeprefix(f"checkpoint '{path}' ")
            skipped.append((path, reason))
            continue
        return _Found(path, saved, skipped, [])
    raise UserError(
        f"none of the {len(found)} checkpoints of '{run_dir}' loads; the newest, "
        f"{found[-1].name}, {skipped[0][1]}"
    )


def _load_into(
    path: Path, settings: RunSettings, agent: Any, env: gym.Env[Any, Any] | None
) -> dict[str, Any]:
    """Checkpoint `path` loaded into `agent` (and `env`'s RNG); UserError if it does not fit."""
    saved = checkpoint.load(path)
    name = saved.get("agent_name")
    if name is not None and name != settings.agent:
        raise UserError(
            f"checkpoint '{path}' is of agent '{shorten(name)}', not this run's '{settings.agent}'"
        )
    try:
        agent.load_state_dict(saved["agent"])
        if env is not None and "env_rng" in saved:
            set_rng_state(env, saved["env_rng"])
    except Exception as error:  # a missing key, a wrong shape or type: whatever the agent met
        raise UserError(
            f"checkpoint '{path}' does not fit this run's {settings.agent} agent "
            f"({describe_exception(error)})"
        ) from None
    return saved


def load(
    run_dir: str | Path,
    checkpoint_file: str | Path | None = None,
    *,
    trust_modules: bool = False,
) -> LoadedRun:
    """The agent of a run, restored from `checkpoint_file` (one of the run's own) or else the
    newest checkpoint that loads (a note on stderr for each newer one that does not)."""
    directory = Path(run_dir)
    settings, agent_config, agent_cls = read_run(directory, trust_modules=trust_modules)
    chosen = None if checkpoint_file is None else _run_checkpoint(directory, checkpoint_file)
    env = EnvFactory.for_run(settings)(0)
    env.close()
    # a run dir whose config was changed to an env the agent cannot take: one line
    check_spaces(settings.agent, agent_cls, settings.env, env.observation_space, env.action_space)
    agent = agent_cls(
        agent_config,
        observation_space=env.observation_space,
        action_space=env.action_space,
        seed=run_seeds(settings.seed)["agent"],
    )
    found = _restore(directory, settings, agent, chosen)
    for path, reason in found.skipped:
        print(f"rlkit: skipped {_short(path)}: it {reason}", file=sys.stderr)
    return LoadedRun(agent, settings, agent_config, found.path, int(found.saved["step"]))


def evaluate_run(
    run_dir: str | Path,
    *,
    episodes: int,
    checkpoint: str | Path | None = None,
    seed: int | None = None,
    video: bool = False,
    trust_modules: bool = False,
    max_episode_steps: int | None = None,
) -> EvalStats:
    """Evaluate a run's agent on episodes seeded apart from training (or from `seed`).

    Atari follows the Nature protocol: full games (no episodic life), unclipped rewards,
    the agent's evaluation epsilon. Episodes are cut at `max_episode_steps`, else at the
    env's own limit, else at `rlkit.evaluation.DEFAULT_MAX_EPISODE_STEPS`. With `video`,
    the first episode is streamed to `<run>/videos/eval-step-<step>.mp4` as it is played
    and logged to W&B with the statistics.
    """
    if episodes < 1:
        raise UserError(f"--episodes {episodes}: must be a positive integer")
    loaded = load(run_dir, checkpoint, trust_modules=trust_modules)
    settings = loaded.settings
    eval_seed = seed if seed is not None else run_seeds(settings.seed)["eval"]
    make_env = EnvFactory.for_run(settings).whole_games()
    if video:  # asked before the env is made to render: some envs refuse unknown modes
        probe = make_env(eval_seed)
        modes = [str(mode) for mode in probe.metadata.get("render_modes") or []]
        probe.close()
        if "rgb_array" not in modes:
            raise UserError(
                f"--video: {settings.env} cannot render frames (its render modes: "
                f"{', '.join(modes) or 'none'}; a video needs rgb_array); evaluate without --video"
            )
    env = make_env(eval_seed, render_mode="rgb_array" if video else None)
    if not video:
        try:
            return evaluate(loaded.agent, env, episodes, max_steps=max_episode_steps)
        finally:
            env.close()
    from rlkit.evaluation import VideoWriter
    from rlkit.rundir import check_run_dir_links
    from rlkit.safefiles import fresh_temporary

    check_run_dir_links(Path(run_dir))  # the video (and W&B) write inside the run dir
    path = Path(run_dir) / "videos" / f"eval-step-{loaded.step:012d}.mp4"
    path.parent.mkdir(exist_ok=True)
    fd, temporary = fresh_temporary(path, suffix=".mp4")  # imageio reads the suffix
    os.close(fd)
    try:
        writer = VideoWriter(temporary)
        try:
            stats = evaluate(
                loaded.agent, env, episodes, video_frames=writer, max_steps=max_episode_steps
            )
        except BaseException:
            writer.abort()  # Ctrl-C or an error: no partial video, no wait for ffmpeg
            raise
        finally:
            env.close()
        writer.close()
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"rlkit: wrote {path}", file=sys.stderr)
    if settings.wandb != "disabled":
        _log_eval_to_wandb(Path(run_dir), settings, stats, path, loaded.step)
    return stats


def _log_eval_to_wandb(
    run_dir: Path, settings: RunSettings, stats: EvalStats, video: Path, step: int
) -> None:
    import wandb

    run = wandb.init(
        project="rlkit",
        name=f"{run_dir.name}-eval",
        group=run_dir.name,
        job_type="eval",
        dir=str(run_dir),
        mode=settings.wandb,
        settings=wandb.Settings(silent=True, init_timeout=20, console="off"),
        reinit="finish_previous",
    )
    metrics = {f"eval/{key}": value for key, value in stats.as_dict().items() if value is not None}
    run.log({**metrics, "eval/video": wandb.Video(str(video), format="mp4")}, step=step)
    run.finish()
