"""The group dir: its files and constants, `--seeds`, a seed's record, and the group
itself (`Group`), made (`new_group`, every check `rlkit run` makes) or read back
(`read_group`)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
)

from rlkit.config import dump_yaml, load_yaml
from rlkit.errors import UserError, shorten
from rlkit.output import LOGS_DIR
from rlkit.rundir import CONFIG_FILE, run_record, write_text
from rlkit.safefiles import read_regular
from rlkit.settings import FOLDER_NAME_RULE, is_folder_name

GROUP_FILE = "group.json"
SUMMARY_FILE = "summary.json"
FINAL_EPISODES = 20  # episodes of each seed's final evaluation
EVALUATIONS = 20  # evaluations during each seed's run, unless eval_every is given
MAX_SEEDS = 1000
MAX_SEED = 2**64 - 1  # a seed's dir name fits a folder name; torch seeds fit 64 bits
MAX_GROUP_BYTES = 4 << 20  # group.json of MAX_SEEDS seeds is about 300 KB
SEED_PREFIX = "seed-"

# what a seed's record says
FINISHED, INTERRUPTED, FAILED, NOT_STARTED = "finished", "interrupted", "failed", "not started"


def parse_seeds(text: str) -> list[int]:
    """`0-9`, `0,3,7`, or both (`0-4,10`): the seeds, in the order given, each once."""
    accepted = "accepted: a range 0-9, a list 0,3,7, or both: 0-4,10"
    seeds: list[int] = []
    for item in text.split(","):
        first, dash, last = item.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise UserError(
                f"--seeds '{shorten(text)}': '{shorten(item)}' is not a seed; {accepted}"
            ) from None
        if low < 0 or high < low or high > MAX_SEED:
            raise UserError(
                f"--seeds '{shorten(text)}': '{shorten(item)}' is not a range of seeds "
                f"(0 to 2**64 - 1, low-high); {accepted}"
            )
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise UserError(f"--seeds '{shorten(text)}': more than {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if repeated:
        raise UserError(f"--seeds '{shorten(text)}': seed {repeated[0]} is given twice; {accepted}")
    return seeds


def is_group_dir(path: str | Path) -> bool:
    return (Path(path) / GROUP_FILE).is_file()


@dataclass
class SeedRecord:
    """One seed's state in `group.json`."""

    seed: int
    status: str = NOT_STARTED
    step: int = 0
    seconds: float = 0.0  # wall-clock of its training and final evaluation, all sessions
    final: dict[str, Any] | None = None  # EvalStats.as_dict() of the final evaluation
    error: str | None = None


@dataclass
class Group:
    """A group dir: what ran and each seed's state (`group.json`), its config (`config.yaml`)."""

    directory: Path
    name: str
    agent: str
    env: str
    steps: int
    seeds: list[int]
    final_episodes: int
    parallel: str  # "ray": one actor per seed; "inprocess": one after another, here
    config: dict[str, Any]  # the group's resolved config: agent, run settings, hparams
    records: dict[int, SeedRecord] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # rlkit version, commit, command

    def run_dir(self, seed: int) -> Path:
        return self.directory / f"{SEED_PREFIX}{seed}"

    def log_file(self, seed: int) -> Path:
        return self.directory / LOGS_DIR / f"{SEED_PREFIX}{seed}.log"

    def save(self) -> None:
        data = {
            "format": 1,
            "name": self.name,
            "agent": self.agent,
            "env": self.env,
            "steps": self.steps,
            "seeds": self.seeds,
            "final_episodes": self.final_episodes,
            "parallel": self.parallel,
            **self.record,
            "runs": {str(seed): asdict(self.records[seed]) for seed in self.seeds},
        }
        try:
            write_text(self.directory / GROUP_FILE, json.dumps(data, indent=1))
        except OSError as error:  # a full disk: the file as last written is kept whole
            raise UserError(
                f"cannot write '{self.directory / GROUP_FILE}' ({error.strerror or error}); "
                "the group's record as last saved is kept; free some space, then continue "
                f"with: rlkit run --resume {self.directory}"
            ) from None


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


class _Checked(BaseModel):
    model_config = ConfigDict(strict=True, allow_inf_nan=False)


class _FinalStats(_Checked):
    """A seed's final evaluation as `EvalStats.as_dict()` wrote it (a field a newer rlkit
    adds is kept; NaN, which an env could produce before envs were checked, is read)."""

    model_config = ConfigDict(strict=True, allow_inf_nan=True, extra="allow")
    episodes: NonNegativeInt
    mean: float
    std: float
    min: float
    max: float
    mean_length: float
    success_rate: float | None = None


class _SeedFields(_Checked):
    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")
    seed: Seed | None = None  # the key under `runs` is the seed
    status: Literal["finished", "interrupted", "failed", "not started"] = "not started"
    step: NonNegativeInt = 0
    seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    final: _FinalStats | None = None
    error: str | None = None


class _Session(_Checked):
    started: str
    seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _GroupFile(_Checked):
    """What `Group.save` writes: every field rlkit reads back, checked before use."""

    format: Literal[1]
    name: str
    agent: str
    env: str
    steps: PositiveInt
    seeds: list[Seed]
    final_episodes: PositiveInt
    parallel: Literal["ray", "inprocess"]
    runs: dict[str, _SeedFields]
    sessions: list[_Session] = []
    address: str | None = None
    git_commit: str | None = None


_GROUP_FIELDS = {"format", "name", "agent", "env", "steps", "seeds", "final_episodes", "parallel",
                 "runs"}  # fmt: skip


def read_group(directory: str | Path) -> Group:
    """The group in `directory` (made by `rlkit run --seeds`)."""
    path = Path(directory)
    if not is_group_dir(path):
        raise UserError(
            f"'{shorten(directory)}' is not a seed group dir (no {GROUP_FILE}); give a folder "
            "made by `rlkit run --seeds`"
        )
    try:
        raw = read_regular(path / GROUP_FILE, MAX_GROUP_BYTES)
        if len(raw) > MAX_GROUP_BYTES:
            raise ValueError(f"larger than {MAX_GROUP_BYTES >> 20} MiB, the most a group needs")
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if len(data.get("runs") or ()) > MAX_SEEDS or len(data.get("seeds") or ()) > MAX_SEEDS:
            raise ValueError(f"more than {MAX_SEEDS} seeds, the most a group may have")
        checked = _GroupFile.model_validate(data)
        records = {}
        for key, fields in checked.runs.items():
            if not key.isdigit() or int(key) > MAX_SEED:
                raise ValueError(f"runs: '{shorten(key)}' is not a seed (0 to 2**64 - 1)")
            records[int(key)] = SeedRecord(
                **{**fields.model_dump(), "seed": int(key)},
            )
        group = Group(
            directory=path,
            name=checked.name,
            agent=checked.agent,
            env=checked.env,
            steps=checked.steps,
            seeds=checked.seeds,
            final_episodes=checked.final_episodes,
            parallel=checked.parallel,
            config=load_yaml(path / CONFIG_FILE),
            records=records,
            record={key: value for key, value in data.items() if key not in _GROUP_FIELDS},
        )
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the file"
        raise UserError(
            f"'{path / GROUP_FILE}' is damaged ({shorten(where)}: {problem['msg']})"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"'{path / GROUP_FILE}' is damaged ({shorten(error)})") from None
    for seed in group.seeds:
        group.records.setdefault(seed, SeedRecord(seed))
    return group


def new_group(
    agent: str | None,
    *,
    config: str | None,
    overrides: list[str],
    flags: dict[str, Any],
    seeds: list[int],
    name: str | None,
    final_episodes: int,
) -> Group:
    """Resolve the group's config (every check `rlkit run` makes), then make its dir."""
    from rlkit.parallel import check_address, ray_address
    from rlkit.resolve import Layer, chosen_agent, flags_layer, overrides_layer, resolve
    from rlkit.seeding import run_seeds
    from rlkit.settings import RunSettings

    given = {key: value for key, value in flags.items() if value is not None}
    agent_name, agent_cls, layers = chosen_agent(agent, config)
    # a group's runs are quiet, one torch thread each unless told otherwise
    layers.insert(0, Layer(settings={"threads": 1, "progress": False}))
    layers += [
        flags_layer({**given, "seed": seeds[0]}),
        overrides_layer(overrides, agent_cls),
    ]
    resolved = resolve(agent_name, agent_cls, layers)
    settings: RunSettings = resolved.settings
    if settings.eval_every is None:
        settings = settings.model_copy(update={"eval_every": max(1, settings.steps // EVALUATIONS)})
    cluster = ray_address(settings.address)[0]  # --address, else RAY_ADDRESS
    parallel = "ray"
    asked_inprocess = settings.pool == "inprocess" and "pool" not in resolved.from_preset
    if asked_inprocess or (cluster is None and _cores() == 1):
        parallel = "inprocess"
        if settings.address is not None:
            raise UserError("--address runs seeds on a Ray cluster; pool=inprocess runs them here")
    if parallel == "ray":
        check_address(settings.address)  # an unreachable cluster fails before anything is made
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    env_name = resolved.env_id.replace("/", "-")
    directory = _make_dir(Path(settings.out_dir), name, f"{agent_name}-{env_name}-{stamp}-seeds")
    # what the preset chose stays the preset's (a --config of this file re-applies it), so
    # its in-process pool is not read back as the user's wish for seeds one after another
    excluded = {"seed", "name", "out_dir", "wandb_group", "address", *resolved.from_preset}
    saved = settings.model_dump(exclude=excluded)
    group_config = {"agent": agent_name, **saved, "hparams": resolved.agent_config.model_dump()}
    try:
        write_text(directory / CONFIG_FILE, dump_yaml(group_config))
    except OSError as error:
        shutil.rmtree(directory, ignore_errors=True)  # nothing of a group yet: nothing kept
        raise UserError(
            f"cannot write the group dir '{directory}' ({error.strerror or error}); give an "
            "--out-dir with space"
        ) from None
    record = run_record(run_seeds(seeds[0]), group_config)
    group = Group(
        directory=directory,
        name=directory.name,
        agent=agent_name,
        env=settings.env,
        steps=settings.steps,
        seeds=seeds,
        final_episodes=final_episodes,
        parallel=parallel,
        config=group_config,
        records={seed: SeedRecord(seed) for seed in seeds},
        record={
            "rlkit_version": record["rlkit_version"],
            "git_commit": record["git_commit"],
            "python": record["python"],
            "platform": record["platform"],
            "packages": record["packages"],
            "command": record["command"],
            "started": record["started"],
            "address": settings.address,
        },
    )
    try:
        group.save()
    except UserError:
        shutil.rmtree(directory, ignore_errors=True)  # no seed ran: nothing to continue
        raise UserError(
            f"cannot write '{directory / GROUP_FILE}' (the disk is full or the folder is "
            "not writable); nothing was kept; give an --out-dir with space"
        ) from None
    return group


def _cores() -> int:
    return os.cpu_count() or 1


def _make_dir(base: Path, name: str | None, default: str) -> Path:
    if name is not None and not is_folder_name(name):
        raise UserError(
            f"--name '{shorten(name)}' is not a folder name; accepted: {FOLDER_NAME_RULE}"
        )
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out-dir {base}: cannot create it ({error.strerror})") from None
    for attempt in range(1, 1000):
        candidate = base / (name or default if attempt == 1 else f"{default}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            if name is not None:
                raise UserError(
                    f"--name {name}: '{candidate}' already exists; choose another name or "
                    f"continue it with `rlkit run --resume {candidate}`"
                ) from None
            continue
        except OSError as error:
            raise UserError(
                f"--out-dir {base}: cannot create '{candidate.name}' in it ({error.strerror})"
            ) from None
        return candidate
    raise UserError(f"cannot create a group directory under '{base}'")
