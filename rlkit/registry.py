"""Plugin discovery through entry points.

Agents: group `rlkit.agents`, name = agent name, value = `module:Class`.
Environments: group `rlkit.envs`, name = the Gymnasium id, value = `module:EnvClass`.

Listing reads names (and each agent's `summary`/`paper` from its source text) without
importing any plugin; `rlkit.agent.load_agent` imports only the agent a run names.
Environment plugins go into Gymnasium's own registry, lazily: the plugin module is
imported by gymnasium.make.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from rlkit.errors import UserError, shorten

AGENT_GROUP = "rlkit.agents"
ENV_GROUP = "rlkit.envs"


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


def env_plugins() -> dict[str, str]:
    """Gymnasium id -> entry point of every environment plugin."""
    return {name: point.value for name, point in sorted(_entry_points(ENV_GROUP).items())}


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


def import_env_module(env: str) -> str:
    """For `module:Id`, import the module (which registers Id) and return `Id`."""
    module, _, env_id = env.partition(":")
    try:
        importlib.import_module(module)
    except (ImportError, ValueError, TypeError) as error:  # ValueError, TypeError: '', '.x'
        raise UserError(
            f"--env {shorten(env)}: cannot import module '{shorten(module)}' "
            f"({shorten(error)}); give module:Id with an importable module"
        ) from None
    return env_id
