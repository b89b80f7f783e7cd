"""Plugin discovery through entry points.

Agents: group `rlkit.agents`, name = agent name, value = `module:Class`.
Environments, group `rlkit.envs`, in either of two forms:

- name = a Gymnasium id (it has a namespace `ns/Name` or a version `-vN`), value =
  `module:EnvClass`: put into Gymnasium's registry lazily; the plugin module is imported
  by gymnasium.make.
- name = a namespace (no `/`, no version), value = `module:function`: the function
  registers that namespace's envs. This is Gymnasium's own plugin convention (group
  `gymnasium.envs`, which gymnasium 0.26-0.29 loaded at import and 1.0 stopped loading;
  MinAtar still declares `MinAtar = minatar.gym:register_envs` there), so rlkit reads
  that group too: `--env MinAtar/Breakout-v1` works with MinAtar installed and nothing
  else. The function runs once per process, the first time an id of its namespace is
  asked for, inside `gymnasium.envs.registration.namespace(name)` as gymnasium's loader
  ran it. A value that turns out to be an env class is registered under the name as
  its id. `rlkit.envs` wins a name both groups declare; `__root__`/`__internal__`
  (root-namespace registrations) are not supported: declare such ids one by one.

Listing reads names (and each agent's `summary`/`paper` from its source text) without
importing any plugin, except namespace plugins, whose ids are known only once their
function has run (`rlkit list envs` says so); `rlkit.agent.load_agent` imports only the
agent a run names.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from rlkit.errors import UserError, describe_exception, shorten, suggest

AGENT_GROUP = "rlkit.agents"
ENV_GROUP = "rlkit.envs"
GYMNASIUM_ENV_GROUP = "gymnasium.envs"
_ROOT_NAMES = ("__root__", "__internal__")
_VERSIONED = re.compile(r"-v\d+$")


@dataclass(frozen=True)
class AgentInfo:
    name: str
    target: str
    summary: str
    paper: str
    distribution: str


def _entry_points(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        found.setdefault(point.name, point)
    return found


def agent_entry_points() -> dict[str, EntryPoint]:
    """Agent name -> its entry point (nothing imported)."""
    return _entry_points(AGENT_GROUP)


def agent_names() -> list[str]:
    return sorted(_entry_points(AGENT_GROUP))


def _class_strings(module: str, attr: str) -> dict[str, str]:
    """String class attributes of `module.attr`, read from source without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return {}
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return {}
    try:
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError):
        return {}
    values: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            for item in node.body:
                target: ast.expr | None = None
                if isinstance(item, ast.AnnAssign):
                    target = item.target
                elif isinstance(item, ast.Assign) and len(item.targets) == 1:
                    target = item.targets[0]
                value = getattr(item, "value", None)
                if (
                    isinstance(target, ast.Name)
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    values[target.id] = value.value
    return values


def list_agents() -> list[AgentInfo]:
    """Installed agents with their one-line summary and paper; imports none of them."""
    infos = []
    for name, point in sorted(_entry_points(AGENT_GROUP).items()):
        module, _, attr = point.value.partition(":")
        strings = _class_strings(module, attr)
        dist = point.dist.name if point.dist is not None else "?"
        infos.append(
            AgentInfo(
                name=name,
                target=point.value,
                summary=strings.get("summary", "(no summary)"),
                paper=strings.get("paper", ""),
                distribution=dist,
            )
        )
    return infos


def is_env_id_name(name: str) -> bool:
    """An `rlkit.envs` name that is a Gymnasium id (has `ns/` or `-vN`), not a namespace."""
    return "/" in name or _VERSIONED.search(name) is not None


def env_plugins() -> dict[str, str]:
    """Gymnasium id -> `module:EnvClass` of every environment plugin named by its id."""
    points = sorted(_entry_points(ENV_GROUP).items())
    return {name: point.value for name, point in points if is_env_id_name(name)}


@dataclass(frozen=True)
class NamespacePlugin:
    """A function that registers a namespace's environments (Gymnasium's convention)."""

    namespace: str
    target: str  # module:function
    group: str  # rlkit.envs or gymnasium.envs
    distribution: str


def env_namespace_plugins() -> dict[str, NamespacePlugin]:
    """Namespace -> its registration function, from `rlkit.envs` and `gymnasium.envs`."""
    found: dict[str, NamespacePlugin] = {}
    for group in (ENV_GROUP, GYMNASIUM_ENV_GROUP):
        for name, point in sorted(_entry_points(group).items()):
            if (
                name in found
                or name in _ROOT_NAMES
                or (group == ENV_GROUP and is_env_id_name(name))
            ):
                continue
            dist = point.dist.name if point.dist is not None else "?"
            found[name] = NamespacePlugin(name, point.value, group, dist)
    return found


_LOADED_NAMESPACES: set[str] = set()  # namespaces whose function ran in this process


def namespace_ids(namespace: str) -> list[str]:
    """Ids in Gymnasium's registry under `namespace/` (or the id `namespace` itself)."""
    import gymnasium

    prefix = f"{namespace}/"
    return sorted(id_ for id_ in gymnasium.registry if id_.startswith(prefix) or id_ == namespace)


def load_env_namespace(plugin: NamespacePlugin) -> list[str]:
    """Run `plugin`'s registration function (once per process) and return its ids.

    Skipped when ids of the namespace are already registered (the package was imported
    and registered itself). A plugin that fails to import or raises is a UserError.
    """
    import gymnasium
    from gymnasium.envs.registration import namespace as gymnasium_namespace

    name = plugin.namespace
    if name in _LOADED_NAMESPACES or namespace_ids(name):
        _LOADED_NAMESPACES.add(name)
        return namespace_ids(name)
    where = f"env plugin '{name}' ({plugin.target}, entry point {plugin.group})"
    module, _, attr = plugin.target.partition(":")
    try:
        loaded = getattr(importlib.import_module(module), attr)
    except Exception as error:  # a broken plugin must not crash the CLI with a traceback
        raise UserError(f"{where} failed to import: {describe_exception(error)}") from None
    if isinstance(loaded, type) and issubclass(loaded, gymnasium.Env):
        gymnasium.register(id=name, entry_point=plugin.target)  # an unversioned id
    elif callable(loaded):
        try:
            with gymnasium_namespace(name):
                loaded()
        except Exception as error:
            raise UserError(f"{where} raised {type(error).__name__}: {error}") from None
    else:
        raise UserError(f"{where} is neither a registration function nor an env class")
    _LOADED_NAMESPACES.add(name)
    return namespace_ids(name)


def register_env_plugins() -> list[str]:
    """Put every plugin environment into Gymnasium's registry (idempotent, imports nothing).

    Called by the environment factory in every process that makes environments, so
    spawned subprocesses and Ray workers see plugin environments too.
    """
    import gymnasium

    registered = []
    for env_id, target in env_plugins().items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=target)
        registered.append(env_id)
    return registered


ENV_FORMS = "give module:Id (importing module registers Id) or module:function:Id"


def import_env_module(env: str) -> str:
    """For `module:Id`, import the module (which registers Id) and return `Id`.

    `module:function:Id` also calls `module.function()` (with no arguments) unless Id is
    registered already, for packages whose ids exist only after a registration call:
    `minatar.gym:register_envs:MinAtar/Breakout-v1`. A third field of the same string
    rather than a separate setting: the env string alone travels to every process that
    makes the env (workers, Ray, evaluation, `--resume`), as `module:Id` always has, and
    Gymnasium ids cannot hold a colon (gymnasium.make splits on it), so the form is
    unambiguous. Anything else is a UserError naming the part at fault.
    """
    import gymnasium

    pieces = env.split(":")
    if len(pieces) not in (2, 3) or not all(piece.strip() for piece in pieces):
        raise UserError(f"--env {shorten(env)}: {ENV_FORMS}, each part non-empty")
    module, env_id = pieces[0], pieces[-1]
    try:
        imported = importlib.import_module(module)
    except (ImportError, ValueError, TypeError) as error:  # ValueError, TypeError: '.x'
        raise UserError(
            f"--env {shorten(env)}: cannot import module '{shorten(module)}' "
            f"({shorten(error)}); {ENV_FORMS}"
        ) from None
    except Exception as error:  # the module's own code failed: say what and where
        raise UserError(
            f"--env {shorten(env)}: importing module '{shorten(module)}' raised "
            f"{describe_exception(error)}; fix the module or give another env"
        ) from None
    if len(pieces) == 2:
        return env_id
    name = pieces[1]
    function = getattr(imported, name, None)  # checked in every process, called once
    if function is None or not callable(function):
        what = "no function" if function is None else "a non-callable"
        raise UserError(f"--env {shorten(env)}: module '{module}' has {what} '{name}'; {ENV_FORMS}")
    if env_id in gymnasium.registry:
        return env_id  # registered already in this process: calling again would re-register
    before = set(gymnasium.registry)
    try:
        function()
    except Exception as error:
        raise UserError(
            f"--env {shorten(env)}: {module}.{name}() raised {describe_exception(error)}"
        ) from None
    if env_id not in gymnasium.registry:
        namespace = env_id.rpartition("/")[0]
        added = sorted(set(gymnasium.registry) - before)
        if not added and namespace:  # it had run before: show what its namespace holds
            added = sorted(id_ for id_ in gymnasium.registry if id_.startswith(f"{namespace}/"))
        shown = ", ".join(added[:8]) + (", ..." if len(added) > 8 else "") or "nothing"
        raise UserError(
            f"--env {shorten(env)}: {module}.{name}() did not register '{env_id}'"
            f"{suggest(env_id, added)}; it registers: {shown}"
        )
    return env_id
