"""Which modules a run dir may make rlkit import: the rule of `rlkit eval` and `--resume`.

A run dir's `config.yaml` names modules: `env: module:Id` (imported), `env:
module:function:Id` (imported, and `module.function()` called) and each `env_wrappers`
entry's `module:Class`. `rlkit eval RUN_DIR`, `rlkit run --resume RUN_DIR` (and
`rlkit.load`, `rlkit.evaluate`) import them to make the run's env, so a run dir made by
someone else could make rlkit run code. From a run dir, rlkit imports a module only when

1. no part of its name is `__main__` (importing one runs a program);
2. Python finds it without running any code: its top-level package through the import
   system's finders (they only search folders and installed mappings), each further part
   in its parent's folders (a package whose submodules appear only when its own code
   runs is refused);
3. it is found through a `sys.path` folder that the run dir does not control: not the
   current directory (`python -m rlkit` puts it first on `sys.path`; a run dir unpacked
   there brings its neighbours), not the run dir's parent folder, nor a folder inside
   the run dir; site-packages, the standard library, PYTHONPATH folders you set and the
   folders `.pth` files add count, and so do installed finders (editable installs); and a
   plain `import` would load that same file (nothing in the current directory shadows
   it);
4. none of its files or folders lies inside the run dir;
5. its top-level package belongs to an installed env package: `gymnasium`, a
   distribution gymnasium's own extras install (ale-py, mujoco, box2d), or one that
   requires gymnasium (not only for an optional extra, as Ray's rllib extra does) or
   declares a `gymnasium.envs` or `rlkit.envs` entry point. That leaves
   out the standard library and unrelated tools (`pytest:X` would collect the run dir's
   files as tests, running them);
6. `module:function:Id` calls `module.function()` only when an installed distribution
   (found as in rule 3) declares `module:function` as a `gymnasium.envs` or `rlkit.envs`
   entry point: a registration function, not any zero-argument function of an env
   package (`rlkit.cli:main:X` would run rlkit's command line, `ray:init:X` start Ray).

The agent and a plugin env (`rlkit.envs`, `gymnasium.envs` entry points) that a run dir
names by name come from entry points, which Python finds in distributions wherever it
finds modules (a `*.dist-info` folder in the current directory declares its own): the
entry point must also be declared, with the same value, by a distribution found through
the folders of rule 3.

Anything else is a one-line UserError; `--trust-modules` (`trust_modules=True`) skips the
check, for a run dir you trust. Commands that take the user's own input (`rlkit run
--env`, `--config FILE`, sweeps) import what they name: that is the user's choice.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

from rlkit.errors import UserError, shorten

ENV_GROUPS = ("gymnasium.envs", "rlkit.envs")
RULE = (
    "from a run dir, rlkit imports only modules of installed env packages "
    "(docs/environments.md, 'Modules a run dir names')"
)


def named_modules(settings: Any) -> list[tuple[str, str]]:
    """(module, where it is named) for every module a run's settings name."""
    found = []
    if ":" in settings.env:
        found.append((settings.env.split(":")[0], f"env '{shorten(settings.env)}'"))
    for position, entry in enumerate(settings.env_wrappers):
        module = entry.wrapper.partition(":")[0]
        found.append((module, f"env_wrappers.{position} '{shorten(entry.wrapper)}'"))
    return found


def check_run_modules(run_dir: Path, settings: Any) -> None:
    """UserError, one line, unless every module the run dir names may be imported, and
    the agent and env plugins it names come from installed distributions."""
    for point, where in _named_plugins(settings):
        if _trusted_points(point.group, run_dir).get(point.name) != point.value:
            place = "?" if point.dist is None else str(point.dist.locate_file(""))
            raise UserError(
                f"{shorten(run_dir / 'config.yaml', 200)} names {where}, a plugin "
                f"({shorten(point.value)}) that no package outside the run dir and the current "
                f"directory declares "
                f"(it comes from {shorten(place, 120)}); {RULE}; if you trust this run dir, "
                "add --trust-modules"
            )
    for module, where in named_modules(settings):
        problem = module_problem(module, run_dir)
        if problem is not None:
            raise UserError(
                f"{shorten(run_dir / 'config.yaml', 200)} names {where}: module "
                f"'{shorten(module)}' {problem}; {RULE}; if you trust this run dir, add "
                "--trust-modules"
            )
    pieces = settings.env.split(":")
    if len(pieces) == 3:  # module:function:Id calls module.function()
        function = f"{pieces[0]}:{pieces[1]}"
        declared = {
            value for group in ENV_GROUPS for value in _trusted_points(group, run_dir).values()
        }
        if function not in declared:
            raise UserError(
                f"{shorten(run_dir / 'config.yaml', 200)} names env '{shorten(settings.env)}', "
                f"which calls {shorten(function)}(): from a run dir rlkit calls only a function "
                "an installed package declares as an env registration entry point (gymnasium.envs "
                "or rlkit.envs); if you trust this run dir, add --trust-modules"
            )


def _named_plugins(settings: Any) -> list[tuple[importlib.metadata.EntryPoint, str]]:
    """The entry points a run's agent and (plugin) env come from: importing them runs
    their package's code, so their distributions must be installed ones (rule 3)."""
    from rlkit.registry import AGENT_GROUP, ENV_GROUP, GYMNASIUM_ENV_GROUP

    found = []
    for point in importlib.metadata.entry_points(group=AGENT_GROUP):
        if point.name == settings.agent:
            found.append((point, f"agent '{shorten(settings.agent)}'"))
    if ":" not in settings.env:
        namespace = settings.env.split("/")[0] if "/" in settings.env else None
        for group in (ENV_GROUP, GYMNASIUM_ENV_GROUP):
            for point in importlib.metadata.entry_points(group=group):
                if point.name in (settings.env, namespace):
                    found.append((point, f"env '{shorten(settings.env)}'"))
    return found


def _trusted_points(group: str, run_dir: Path) -> dict[str, str]:
    """Entry point name -> value in `group`, of the distributions found through the
    folders of rule 3 only."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=_trusted_entries(run_dir)):
        for point in dist.entry_points:
            if point.group == group:
                found.setdefault(point.name, point.value)
    return found


def module_problem(name: str, run_dir: Path) -> str | None:
    """Why `name`, named by `run_dir`, may not be imported (see the module docstring)."""
    parts = name.split(".")
    if not all(part.isidentifier() for part in parts):
        return "is not a module name"
    if "__main__" in parts:
        return "runs a program when imported (__main__)"
    top = parts[0]
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is executed
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None  # not importable at all: the import says so in its own one line
    installed = _find(top, _trusted_entries(run_dir))
    if installed is None:
        return (
            f"is found only in the current directory or beside the run dir ({_where(spec)}), "
            "not in an installed place"
        )
    if _locations(installed) != _locations(spec):
        return (
            f"is shadowed: import would load {_where(spec)}, not the installed {_where(installed)}"
        )
    specs = [spec]
    for index in range(1, len(parts)):
        search = specs[-1].submodule_search_locations
        if search is None:
            return None  # its parent is no package: the import says so
        child = _find(".".join(parts[: index + 1]), list(search))
        if child is None:
            return "is not found without running its package's code"
        specs.append(child)
    inside = _inside(run_dir, (place for found in specs for place in _locations(found)))
    if inside is not None:
        return f"lies inside the run dir ({shorten(inside, 120)})"
    return _distribution_problem(top)


def _find(name: str, path: list[str]) -> ModuleSpec | None:
    """The spec the import system's finders give `name` when searching `path`, as import
    does (for a top-level name `path` stands in for sys.path); runs no module code."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            if finder is importlib.machinery.PathFinder:
                spec = importlib.machinery.PathFinder.find_spec(name, path)
            else:
                spec = find(name, path if "." in name else None)
        except (ImportError, ValueError):
            continue
        if spec is not None:
            return spec
    return None


def _locations(spec: ModuleSpec) -> list[str]:
    """The files and folders a spec stands for, resolved."""
    places = [] if spec.origin in (None, "built-in", "frozen") else [str(spec.origin)]
    places += list(spec.submodule_search_locations or [])
    return [os.path.realpath(place) for place in places]


def _where(spec: ModuleSpec) -> str:
    places = _locations(spec)
    return shorten(places[0], 120) if places else str(spec.origin)


def _inside(run_dir: Path, places: Iterable[str]) -> str | None:
    root = os.path.realpath(run_dir)
    for place in places:
        if place == root or place.startswith(root + os.sep):
            return place
    return None


def _trusted_entries(run_dir: Path) -> list[str]:
    """The `sys.path` folders of rule 3, in order: all but the current directory, the run
    dir's parent and folders inside the run dir."""
    cwd = os.path.realpath(os.getcwd())
    root = os.path.realpath(run_dir)
    untrusted = {cwd, os.path.dirname(root)}
    kept = []
    for entry in sys.path:
        if not entry:  # '' is the current directory
            continue
        path = os.path.realpath(entry)
        if path in untrusted or path == root or path.startswith(root + os.sep):
            continue
        kept.append(entry)
    return kept


_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _gymnasium_extras() -> set[str]:
    """The distributions gymnasium's own extras install (`gymnasium[atari]`: ale-py,
    `gymnasium[mujoco]`: mujoco, ...): env packages even where they require gymnasium
    only for an extra of their own, as ale-py does."""
    try:
        requires = importlib.metadata.distribution("gymnasium").requires or []
    except importlib.metadata.PackageNotFoundError:
        return set()
    names = set()
    for requirement in requires:
        name, _, marker = requirement.partition(";")
        match = _REQUIREMENT_NAME.match(name)
        extra = _EXTRA.search(marker)
        if match is not None and extra is not None and extra[1] in _ENV_EXTRAS:
            names.add(_normal(match[1]))
    return names


_EXTRA = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
# gymnasium's extras that install env families (not its testing or array-backend ones)
_ENV_EXTRAS = {"atari", "box2d", "mujoco", "classic-control", "toy-text"}


def _distribution_problem(top: str) -> str | None:
    """Rule 5: `top` is a package of an installed env package, or why not."""
    if top in sys.stdlib_module_names:
        return "is in the standard library, where no env or wrapper lives"
    names = importlib.metadata.packages_distributions().get(top, [])
    if not names:
        return "belongs to no installed distribution"
    for name in dict.fromkeys(names):
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _normal(name) in {"gymnasium", *_gymnasium_extras()}:
            return None  # gymnasium, or an env family its own extras install (ale-py, ...)
        for requirement in dist.requires or []:
            name, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue  # needed only by an optional extra (ray[rllib]): not an env package
            match = _REQUIREMENT_NAME.match(name)
            if match is not None and _normal(match[1]) == "gymnasium":
                return None
        if any(point.group in ENV_GROUPS for point in dist.entry_points):
            return None
    listed = ", ".join(dict.fromkeys(names))
    return (
        f"belongs to {shorten(listed)}, not an env package (it neither requires gymnasium "
        "nor declares gymnasium.envs or rlkit.envs entry points)"
    )
