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
3. it is found in the Python installation: through a `sys.path` folder inside the
   installation (the standard library, site-packages, the user's site-packages), one a
   `.pth` file of site-packages adds, or an installed finder (editable installs), never
   through the current directory, PYTHONPATH or another folder; and a plain `import`
   would load that same file (nothing earlier on `sys.path` shadows it);
4. none of its files or folders lies inside the run dir;
5. its top-level package belongs to an installed env package: `gymnasium`, or a
   distribution that requires gymnasium or declares a `gymnasium.envs` or `rlkit.envs`
   entry point. That leaves out the standard library and unrelated tools, whose
   zero-argument functions a `module:function:Id` would call with rlkit's own command line
   (`pytest:main:X` would collect the run dir's files as tests, running them).

The agent and a plugin env (`rlkit.envs`, `gymnasium.envs` entry points) that a run dir
names by name come from entry points, which Python also finds in distributions beside
modules (a `*.dist-info` folder in the current directory): their distribution must have
been found in the installation too (rule 3), or declare the same entry point.

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
import site
import sys
from collections.abc import Iterable
from functools import lru_cache
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
        if _installed_points(point.group).get(point.name) != point.value:
            place = "?" if point.dist is None else str(point.dist.locate_file(""))
            raise UserError(
                f"{shorten(run_dir / 'config.yaml', 200)} names {where}, a plugin "
                f"({shorten(point.value)}) that no package of the Python installation declares "
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


def _installed_points(group: str) -> dict[str, str]:
    """Entry point name -> value in `group`, of the distributions found in the installation
    (rule 3's folders) only."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=_installed_entries()):
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
    installed = _find(top, _installed_entries())
    if installed is None:
        return f"is found outside the Python installation ({_where(spec)})"
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


def _installed_entries() -> list[str]:
    """The `sys.path` folders of the Python installation (see rule 3), in order."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    site_dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        site_dirs.append(site.getusersitepackages())
    roots.update(os.path.realpath(folder) for folder in site_dirs)
    added = _pth_entries(tuple(site_dirs))
    kept = []
    for entry in sys.path:
        if not entry:  # '' is the current directory
            continue
        path = os.path.realpath(entry)
        inside = any(path == root or path.startswith(root + os.sep) for root in roots)
        if inside or path in added:
            kept.append(entry)
    return kept


@lru_cache(maxsize=4)
def _pth_entries(site_dirs: tuple[str, ...]) -> frozenset[str]:
    """Folders that `.pth` files of site-packages add to sys.path (editable installs)."""
    found = set()
    for folder in site_dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".pth"):
                continue
            try:
                lines = Path(folder, name).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for line in lines:
                line = line.strip()
                if line and not line.startswith(("#", "import ", "import\t")):
                    found.add(os.path.realpath(os.path.join(folder, line)))
    return frozenset(found)


_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


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
        if _normal(name) == "gymnasium":
            return None
        for requirement in dist.requires or []:
            match = _REQUIREMENT_NAME.match(requirement)
            if match is not None and _normal(match[1]) == "gymnasium":
                return None
        if any(point.group in ENV_GROUPS for point in dist.entry_points):
            return None
    listed = ", ".join(dict.fromkeys(names))
    return (
        f"belongs to {shorten(listed)}, not an env package (it neither requires gymnasium "
        "nor declares gymnasium.envs or rlkit.envs entry points)"
    )
