"""Observations of any Gymnasium space: its parts, conversion to arrays and tensors, nesting.

    parts = observation_parts(space)           # leaves in order: path, space, dropped or not
    tensors = observation_tensors(observation, space)   # one env's observation, no batch axis
    batch = stack_observations([obs_a, obs_b], space)   # N envs' observations, leaves [N, ...]
    arrays = observation_arrays(vector_env_observations, space)  # numpy, compact dtypes
    steps = stack([batch_t0, batch_t1])        # leaves [T, N, ...]
    flat = reshape_leading(steps, 2, (-1,))    # leaves [T * N, ...]
    rows = index(batch, [0, 2])                # leaves [2, ...]

Parts. A Box, Discrete, MultiDiscrete or MultiBinary space is one part (its path is
`()`, its name `observation`); a Dict or Tuple is the list of its leaves, depth first,
Dict parts in the space's key order and Tuple parts by index, named by their path
joined with "/" (`image`, `inner/position`, `0`). A part no network can use (Text,
MiniGrid's MissionSpace, Graph, Sequence, OneOf, ...) is *dropped*: it stays in the
list with the reason, and conversion leaves it out (absent from a dict, None in a
tuple).

Conversion keeps each part compact: uint8 stays uint8, bool stays bool, float64 becomes
float32, unsigned ints wider than 8 bits become the next wider signed int (torch's
unsigned types beyond uint8 lack most operations), and Discrete and MultiDiscrete
values are int64 indices. A Box observation space as a whole converts exactly as
`rlkit.policies.observation_tensor` does (only float64 changes), so rollouts of Box
observations are unchanged.

Nested values ("trees") are a leaf, a dict of trees or a tuple of trees (None for a
dropped part). The helpers (`map_leaves`, `stack`, `concatenate`, `index`,
`leading_shape`, `reshape_leading`) work on trees of numpy arrays or of torch tensors,
so a plain Box observation (a single array or tensor) goes through them unchanged.
They are a few lines of our own rather than `torch.utils._pytree`, a private torch
module with no promise of stability, and they pick np.stack or torch.stack by leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

PathKey: TypeAlias = str | int
Tree: TypeAlias = Any
"""A leaf (numpy array or torch tensor), a dict of trees, or a tuple of trees or None."""

SUPPORTED_LEAVES: tuple[type[gym.Space[Any]], ...] = (
    gym.spaces.Box,
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
)
ROOT_NAME = "observation"


@dataclass(frozen=True)
class Part:
    """One leaf of an observation space: where it is, its space, and why it is dropped."""

    path: tuple[PathKey, ...]  # Dict keys and Tuple indices from the root; () for the root
    space: gym.Space[Any]
    dropped: str | None = None  # None: kept; else the reason (the space's class name)

    @property
    def name(self) -> str:
        """`image`, `inner/position`, `0`; `observation` for a space that is one part."""
        return "/".join(str(key) for key in self.path) if self.path else ROOT_NAME

    @property
    def kept(self) -> bool:
        return self.dropped is None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one value of this part as converted (Discrete: a scalar index)."""
        if isinstance(self.space, gym.spaces.Discrete):
            return ()
        if isinstance(self.space, gym.spaces.MultiDiscrete):
            return tuple(int(size) for size in self.space.nvec.shape)
        return tuple(int(size) for size in self.space.shape or ())

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype a value of this part has once converted (see the module docstring)."""
        if isinstance(self.space, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
            return np.dtype(np.int64)
        return compact_dtype(np.dtype(self.space.dtype))


def compact_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float64 -> float32; uint16/32/64 -> int32/int64/int64; every other dtype kept."""
    if dtype == np.float64:
        return np.dtype(np.float32)
    if dtype.kind == "u" and dtype.itemsize > 1:
        return np.dtype(np.int32 if dtype.itemsize == 2 else np.int64)
    return dtype


def observation_parts(space: gym.Space[Any]) -> list[Part]:
    """Every leaf of `space`, depth first (see the module docstring); dropped ones included."""
    parts: list[Part] = []

    def visit(node: gym.Space[Any], path: tuple[PathKey, ...]) -> None:
        if isinstance(node, gym.spaces.Dict):
            for key, child in node.spaces.items():
                visit(child, (*path, key))
        elif isinstance(node, gym.spaces.Tuple):
            for position, child in enumerate(node.spaces):
                visit(child, (*path, position))
        elif isinstance(node, SUPPORTED_LEAVES):
            parts.append(Part(path, node))
        else:
            parts.append(Part(path, node, dropped=type(node).__name__))

    visit(space, ())
    return parts


def get_part(tree: Tree, path: tuple[PathKey, ...]) -> Any:
    """The value at `path` inside a nested observation (dict keys, tuple indices)."""
    node = tree
    for key in path:
        node = node[key]
    return node


_DROPPED = object()  # a dropped part, while a tree is built


def build_tree(space: gym.Space[Any], leaf: Callable[[tuple[PathKey, ...]], Any]) -> Tree:
    """The tree shaped like `space` with `leaf(path)` at kept parts; dropped parts are left
    out (absent from a dict, None in a tuple)."""

    def visit(node: gym.Space[Any], path: tuple[PathKey, ...]) -> Any:
        if isinstance(node, gym.spaces.Dict):
            built = {key: visit(child, (*path, key)) for key, child in node.spaces.items()}
            return {key: value for key, value in built.items() if value is not _DROPPED}
        if isinstance(node, gym.spaces.Tuple):
            children = (visit(child, (*path, i)) for i, child in enumerate(node.spaces))
            return tuple(None if value is _DROPPED else value for value in children)
        if isinstance(node, SUPPORTED_LEAVES):
            return leaf(path)
        return _DROPPED

    return visit(space, ())


def _array(values: Any, part: Part) -> NDArray[Any]:
    """`values` (one value or stacked values of `part`) as an array of the part's dtype."""
    array = np.asarray(values)
    dtype = part.dtype
    return array if array.dtype == dtype else array.astype(dtype)


def observation_arrays(observation: Any, space: gym.Space[Any]) -> Tree:
    """An observation as a tree of numpy arrays in compact dtypes, dropped parts left out.

    Works on one env's observation and on a vector env's batched one alike (gymnasium
    batches a Dict into a dict of arrays with a leading env axis and a Discrete part
    into an int64 array; `space` is the single env's space). Only dtypes change: a part
    already in its dtype is passed through without a copy.
    """
    parts = {part.path: part for part in observation_parts(space)}
    return build_tree(space, lambda path: _array(get_part(observation, path), parts[path]))


def _box_tensor(array: NDArray[Any]) -> torch.Tensor:
    """`rlkit.policies.observation_tensor`'s conversion: float64 -> float32, else as is."""
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(array)


def observation_tensors(observation: Any, space: gym.Space[Any]) -> Tree:
    """One env's observation as tensors (no batch axis), each part in its compact dtype.

    A Box observation converts exactly as `rlkit.policies.observation_tensor` does.
    """
    if isinstance(space, gym.spaces.Box):
        return _box_tensor(np.asarray(observation))
    return map_leaves(torch.from_numpy, observation_arrays(observation, space))


def stack_observations(observations: Sequence[Any], space: gym.Space[Any]) -> Tree:
    """Observations of N envs as one tree of tensors with leaves [N, ...].

    A Box is `observation_tensor(np.stack(observations))`, as the rollouts do today.
    """
    if isinstance(space, gym.spaces.Box):
        return _box_tensor(np.stack(observations))
    parts = {part.path: part for part in observation_parts(space)}

    def leaf(path: tuple[PathKey, ...]) -> torch.Tensor:
        values = [get_part(observation, path) for observation in observations]
        return torch.from_numpy(_array(np.stack(values), parts[path]))

    return build_tree(space, leaf)


# ----------------------------------------------------------------- nested helpers


def map_leaves(function: Callable[[Any], Any], tree: Tree) -> Tree:
    """`function` applied to every leaf; dicts, tuples and None kept as they are."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {key: map_leaves(function, value) for key, value in tree.items()}
    if isinstance(tree, tuple):
        return tuple(map_leaves(function, value) for value in tree)
    return function(tree)


def leaves(tree: Tree) -> list[Any]:
    """The leaves of `tree`, depth first (the order of `observation_parts`)."""
    found: list[Any] = []
    map_leaves(found.append, tree)
    return found


def _zip_map(function: Callable[[list[Any]], Any], trees: Sequence[Tree]) -> Tree:
    """`function` applied to the list of matching leaves of trees of the same structure."""
    first = trees[0]
    if first is None:
        return None
    if isinstance(first, dict):
        return {key: _zip_map(function, [tree[key] for tree in trees]) for key in first}
    if isinstance(first, tuple):
        return tuple(_zip_map(function, [tree[i] for tree in trees]) for i in range(len(first)))
    return function(list(trees))


def stack(trees: Sequence[Tree], dim: int = 0) -> Tree:
    """Stack matching leaves along a new axis `dim` (torch.stack or np.stack by leaf type)."""

    def join(items: list[Any]) -> Any:
        if isinstance(items[0], torch.Tensor):
            return torch.stack(items, dim=dim)
        return np.stack(items, axis=dim)

    return _zip_map(join, trees)


def concatenate(trees: Sequence[Tree], dim: int = 0) -> Tree:
    """Concatenate matching leaves along axis `dim` (torch.cat or np.concatenate)."""

    def join(items: list[Any]) -> Any:
        if isinstance(items[0], torch.Tensor):
            return torch.cat(items, dim=dim)
        return np.concatenate(items, axis=dim)

    return _zip_map(join, trees)


def index(tree: Tree, rows: Any) -> Tree:
    """`leaf[rows]` for every leaf: pick batch rows, a time step, a slice."""
    return map_leaves(lambda leaf: leaf[rows], tree)


def leading_shape(tree: Tree, dims: int) -> tuple[int, ...]:
    """The first `dims` sizes of the leaves (the batch axes they share), e.g. (T, B)."""
    found = leaves(tree)
    if not found:
        raise ValueError("the observation holds no part a network can use")
    return tuple(int(size) for size in found[0].shape[:dims])


def reshape_leading(tree: Tree, dims: int, shape: Sequence[int]) -> Tree:
    """Replace the first `dims` axes of every leaf by `shape`: [T, B, ...] -> [T * B, ...]
    with `reshape_leading(tree, 2, (-1,))`, and back with `(T, B)`."""
    return map_leaves(lambda leaf: leaf.reshape(*shape, *leaf.shape[dims:]), tree)


def to_device(tree: Tree, device: torch.device | str, *, non_blocking: bool = False) -> Tree:
    """Every tensor leaf moved to `device`."""
    return map_leaves(lambda leaf: leaf.to(device, non_blocking=non_blocking), tree)


def host_to_device(arrays: Tree, device: torch.device) -> Tree:
    """Trees of host arrays as tensors on `device`, in their dtypes (uint8 frames travel
    as uint8 and are scaled there); through pinned memory, without blocking, to a GPU."""
    if device.type == "cpu":
        return map_leaves(torch.from_numpy, arrays)
    return map_leaves(
        lambda array: torch.from_numpy(array).pin_memory().to(device, non_blocking=True), arrays
    )
