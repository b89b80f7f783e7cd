"""CartPole that records which Ray node made it: `--env tests.cluster_envs:NodeCartPole-v0`.

Each node of the test cluster runs with RLKIT_TEST_NODE=<its name>, and its worker
processes inherit it; making the env writes `<RLKIT_TEST_MARKERS>/<node>-<pid>` so a test
can tell which nodes did work. Outside the test cluster it is plain CartPole-v1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym

ENV_ID = "NodeCartPole-v0"


def make_node_cartpole(**kwargs: Any) -> gym.Env[Any, Any]:
    markers = os.environ.get("RLKIT_TEST_MARKERS")
    if markers:
        node = os.environ.get("RLKIT_TEST_NODE", "driver")
        (Path(markers) / f"{node}-{os.getpid()}").touch()
    return gym.make("CartPole-v1", **kwargs)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=make_node_cartpole)
