"""Networks every agent builds from: MLP, the Nature Atari CNN, and value heads.

- `NatureCNN`: Mnih et al. (2015), Nature 518, Methods "Model architecture": 32 8x8
  filters stride 4, 64 4x4 stride 2, 64 3x3 stride 1, each with ReLU, then a
  512-unit fully connected ReLU layer. Takes uint8 frames and scales them by 1/255 on
  the device, so observations travel host -> device as uint8 (4x fewer bytes).
- `MLP`: fully connected layers for vector observations, ReLU by default or tanh
  (`activation`; tanh is the policy-gradient papers' and SB3's choice).
- `QHead` / `DuelingHead`: action values; the dueling head (Wang et al. 2016, eq. 9)
  combines a state value and mean-centred advantages.
- `build_torso(observation_space)`: the Nature CNN for image stacks (C, H, W) of
  uint8, an MLP for flat Box observations (`activation` applies to the MLP only).
- `ObservationNormalizer`: vector observations scaled by running mean and std, a
  module in front of a torso (`ActorCritic(normalize_observations=True)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlkit.errors import UserError

Activation = Literal["relu", "tanh"]
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Linear + activation layers; `output_dim` is the width of the last hidden layer."""

    def __init__(
        self, input_dim: int, hidden: Sequence[int], activation: Activation = "relu"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            width = size
        self.body = nn.Sequential(*layers)
        self.output_dim = width

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.body(observations.flatten(1).float())  # type: ignore[no-any-return]


class NatureCNN(nn.Module):
    """The DQN torso of Mnih et al. (2015); input (B, C, 84, 84) uint8, output (B, 512).

    `frame_size`: the side of square frames, or (height, width); at least 36 each.
    """

    def __init__(
        self, in_channels: int = 4, frame_size: int | tuple[int, int] = 84, features: int = 512
    ) -> None:
        super().__init__()
        height, width = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, in_channels, height, width)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, features), nn.ReLU())
        self.output_dim = features
        self.channels_last = False  # see use_channels_last

    def use_channels_last(self) -> None:
        """Keep weights and activations channels-last (NHWC): on the CPU oneDNN runs the
        convolutions of a batch-32 update 12-17% faster that way (forward and backward)."""
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.channels_last = True

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        scaled = frames.float() * (1.0 / 255.0)
        if self.channels_last:
            scaled = scaled.contiguous(memory_format=torch.channels_last)
        return self.fc(self.conv(scaled))  # type: ignore[no-any-return]


class QHead(nn.Module):
    """One linear layer: features -> Q(s, a) for each action."""

    def __init__(self, features: int, num_actions: int) -> None:
        super().__init__()
        self.out = nn.Linear(features, num_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(features)  # type: ignore[no-any-return]


class DuelingHead(nn.Module):
    """Q = V(s) + A(s, a) - mean_a A(s, a)   (Wang et al. 2016, eq. 9)."""

    def __init__(self, features: int, num_actions: int) -> None:
        super().__init__()
        self.value = nn.Linear(features, 1)
        self.advantage = nn.Linear(features, num_actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        advantage = self.advantage(features)
        return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)  # type: ignore[no-any-return]


class ObservationNormalizer(nn.Module):
    """(x - mean) / std from running statistics over every batch seen, clipped to +-10.

    The statistics are buffers, so they travel with the weights to workers and into
    checkpoints; the learner merges each batch in with `update` (Chan et al. 1979's
    parallel variance), after its step, so workers act on the statistics it learned with.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(1e-4))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        mean, var = self.get_buffer("mean"), self.get_buffer("var")
        return ((observations - mean) / torch.sqrt(var + 1e-8)).clamp(-10.0, 10.0)

    @torch.no_grad()
    def update(self, observations: torch.Tensor) -> None:
        """Merge the statistics of `observations` [B, size] into the running ones."""
        batch_mean, batch_var = observations.mean(dim=0), observations.var(dim=0, unbiased=False)
        self.merge(float(len(observations)), batch_mean, batch_var)

    @torch.no_grad()
    def merge(self, batch: float, batch_mean: Any, batch_var: Any) -> None:
        """Merge the statistics of `batch` observations (their mean and variance: tensors,
        arrays or lists, as workers send them; taken in the statistics' dtype)."""
        mean, var, count = self.get_buffer("mean"), self.get_buffer("var"), self.get_buffer("count")
        # copied: a worker's arrays come read-only from Ray's object store
        batch_mean = torch.tensor(np.asarray(batch_mean), dtype=mean.dtype)
        batch_var = torch.tensor(np.asarray(batch_var), dtype=mean.dtype)
        total = count + batch
        delta = batch_mean - mean
        mean += delta * batch / total
        var.copy_((var * count + batch_var * batch + delta**2 * count * batch / total) / total)
        count.copy_(total)


def is_image_space(space: gym.Space[Any]) -> bool:
    """A uint8 Box of shape (channels, height, width): frames for a CNN."""
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[1] == space.shape[2]
    )


def build_torso(
    observation_space: gym.Space[Any], mlp_hidden: Sequence[int], activation: Activation = "relu"
) -> nn.Module:
    """Nature CNN for image stacks, MLP for flat Box observations; `.output_dim` is set."""
    if is_image_space(observation_space):
        assert isinstance(observation_space, gym.spaces.Box)
        channels, size, _ = observation_space.shape
        return NatureCNN(in_channels=channels, frame_size=size)
    if isinstance(observation_space, gym.spaces.Box):
        return MLP(int(np.prod(observation_space.shape)), mlp_hidden, activation)
    raise UserError(f"no network for observation space {observation_space}; need a Box")


class QNetwork(nn.Module):
    """Torso + (dueling) Q head."""

    def __init__(self, torso: nn.Module, num_actions: int, *, dueling: bool) -> None:
        super().__init__()
        self.torso = torso
        features = int(torso.output_dim)  # type: ignore[arg-type]
        self.head = DuelingHead(features, num_actions) if dueling else QHead(features, num_actions)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.head(self.torso(observations))  # type: ignore[no-any-return]


def resolve_device(name: str) -> torch.device:
    """`auto`: the GPU when torch sees one, else the CPU; otherwise the torch device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(
            f"device '{name}' is not a torch device; give auto, cpu or cuda[:N]"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}': torch sees no CUDA GPU here; give auto or cpu")
    return device


def parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())
