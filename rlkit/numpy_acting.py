"""A memoryless MLP policy's greedy action computed with NumPy, for per-step acting loops.

Acting one observation at a time through torch costs about 140 microseconds of call
overhead for a 64x64 MLP on this kind of CPU, as long as a MuJoCo step; the same
arithmetic in NumPy takes about 20. NES plays every population member's episode one step
at a time, so its workers act through `NumpyGreedyPolicy` when the policy allows it: a
flat Box observation (optionally normalised), an `MLP` torso, no LSTM, and a Discrete or
1-D Box action. Anything else keeps torch (`compile_greedy` returns None).

The arithmetic is torch's, in float32: (x - mean) / sqrt(var + 1e-8) clipped to +-10,
each layer `W x + b` and its activation, then the argmax of the logits (plus the space's
`start`) or the Gaussian mean clipped to the bounds. Sums may be taken in another order
than torch's, so a Box action can differ from torch's in its last bits.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from torch import nn

from .networks import MLP, ObservationNormalizer
from .policies import ActorCritic, CategoricalHead, GaussianHead

Array = NDArray[np.float32]
_ACTIVATIONS = {nn.ReLU: lambda x: np.maximum(x, 0.0, out=x), nn.Tanh: lambda x: np.tanh(x, out=x)}


def _layers(mlp: MLP) -> list[nn.Module] | None:
    """The MLP's modules when each is a linear layer or a known activation after one."""
    modules = list(mlp.body)
    for index, module in enumerate(modules):
        linear = isinstance(module, nn.Linear)
        after_linear = index > 0 and isinstance(modules[index - 1], nn.Linear)
        if not (linear or (type(module) in _ACTIVATIONS and after_linear)):
            return None
    return modules


class NumpyGreedyPolicy:
    """`act` and `initial_state` as `rlkit.policies.GreedyPolicy`, in NumPy.

    `refresh()` re-reads the parameters and normaliser statistics: call it after changing
    them (NES sets new parameters for every population member).
    """

    def __init__(
        self,
        policy: ActorCritic,
        action_space: gym.spaces.Discrete | gym.spaces.Box,
        normalizer: ObservationNormalizer | None,
        layers: list[nn.Module],
        head: nn.Linear,
    ) -> None:
        self.policy = policy
        self.action_space = action_space
        self._normalizer = normalizer
        self._layers = layers
        self._head = head
        self._discrete = isinstance(action_space, gym.spaces.Discrete)
        self._start = int(action_space.start) if self._discrete else 0  # type: ignore[union-attr]
        if isinstance(action_space, gym.spaces.Box):
            self._low = action_space.low
            self._high = action_space.high
            self._dtype = action_space.dtype
        self.refresh()

    def refresh(self) -> None:
        """Copy the current parameters (and normaliser statistics) into NumPy arrays."""
        self._steps: list[tuple[Array, Array, Any]] = []
        for module in self._layers:
            if isinstance(module, nn.Linear):
                self._steps.append((*_weights(module), None))
            else:  # the activation after the last linear layer
                weight, bias, _ = self._steps[-1]
                self._steps[-1] = (weight, bias, _ACTIVATIONS[type(module)])
        self._out = _weights(self._head)
        self._shift: Array | None = None
        if self._normalizer is not None:
            mean = self._normalizer.get_buffer("mean").detach().numpy().astype(np.float32)
            var = self._normalizer.get_buffer("var").detach().numpy().astype(np.float32)
            self._shift = mean
            self._scale = np.sqrt(var + np.float32(1e-8))

    def initial_state(self) -> None:
        return None

    def act(self, observation: Any, state: None) -> tuple[Any, None]:
        x = np.asarray(observation, dtype=np.float32).reshape(-1)
        if self._shift is not None:
            x = np.clip((x - self._shift) / self._scale, -10.0, 10.0)
        for weight, bias, activation in self._steps:
            x = weight @ x + bias
            if activation is not None:
                x = activation(x)
        out = self._out[0] @ x + self._out[1]
        if self._discrete:
            return int(np.argmax(out)) + self._start, None
        return np.clip(out, self._low, self._high).astype(self._dtype), None


def _weights(linear: nn.Linear) -> tuple[Array, Array]:
    weight = linear.weight.detach().numpy().astype(np.float32, copy=True)
    bias = linear.bias.detach().numpy().astype(np.float32, copy=True)
    return weight, bias


def compile_greedy(policy: ActorCritic, action_space: gym.Space[Any]) -> NumpyGreedyPolicy | None:
    """A NumPy actor for `policy` when it is a memoryless MLP over a flat Box with a
    Discrete or 1-D Box action; None otherwise (act through torch)."""
    if policy.recurrent or not isinstance(policy.observation_space, gym.spaces.Box):
        return None
    encoder, normalizer = policy.encoder, policy.normalizer
    if normalizer is not None:
        assert isinstance(encoder, nn.Sequential)
        encoder = encoder[1]
    if not isinstance(encoder, MLP):
        return None
    layers = _layers(encoder)
    head = policy.policy_head
    if layers is None:
        return None
    if isinstance(action_space, gym.spaces.Discrete) and isinstance(head, CategoricalHead):
        return NumpyGreedyPolicy(policy, action_space, normalizer, layers, head.logits)
    if (
        isinstance(action_space, gym.spaces.Box)
        and len(action_space.shape) == 1
        and isinstance(head, GaussianHead)
    ):
        return NumpyGreedyPolicy(policy, action_space, normalizer, layers, head.mean)
    return None
