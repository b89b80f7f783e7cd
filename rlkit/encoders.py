"""Encoders: one builder that picks the torso from the observation space, for every space.

    encoder = build_encoder(observation_space, mlp_hidden=(64, 64), activation="relu")
    features = encoder(observations)     # a tensor, or a dict/tuple of tensors; leaves [B, ...]
    encoder.output_dim                   # the feature width, as for rlkit.networks' torsos
    describe_encoder(observation_space, (64, 64))
    # 'image: small CNN (7x7x3 HWC uint8, x1/255); direction: one-hot(4);
    #  mission: dropped (MissionSpace) -> MLP 64x64'

Each part of the observation (`rlkit.observations.observation_parts`: the space itself,
or every leaf of a Dict/Tuple) gets a torso by these rules (`torso: auto`):

| part | torso |
| --- | --- |
| uint8 Box (C, H, W), H == W, H >= 36: Atari frame stacks (`is_image_space`) | Nature CNN |
| other uint8 image Box (HWC, CHW or HW), both sides >= 36 | Nature CNN |
| image-like Box, smaller: uint8 (H, W), or rank 3 of uint8, bool or int | small CNN |
| any other Box (floats of any rank, bool/int vectors) | flattened |
| Discrete, MultiDiscrete | one-hot per dimension, honouring `start` |
| MultiBinary | flattened (0 or 1) |
| Text, MissionSpace, Graph, Sequence, OneOf, ... | dropped, with a note |

Layout of a rank-3 image: a uint8 (C, H, W) box with H == W is channel-first, as
`is_image_space` has always read Atari stacks; otherwise the channel axis is the
smaller of the first and last axes, the last one on a tie (Gymnasium's HWC image
convention). So MiniGrid's (7, 7, 3) "image" and MinAtar's (10, 10, 4) grids are HWC,
Atari's (4, 84, 84) stack CHW. A rank-2 uint8 box is one grey channel (HW).

Inputs: uint8 images are scaled by 1/255 (the Nature CNN does it itself, on the
device), bool and int images enter as floats (0/1, indices); flattened parts enter as
floats, unscaled, as `rlkit.networks.MLP` has always read a Box. `scale` overrides the
factor of a flattened or small-CNN part: MiniGrid's image holds small indices (object
<= 10, colour <= 5, state <= 2) in a uint8 box, which 1/255 shrinks to <= 0.04; the
RL starter files feed them raw (`scale: {image: 1.0}`).

Network. A flat Box is exactly `rlkit.networks.MLP` and an Atari stack exactly
`rlkit.networks.NatureCNN`, the modules `build_torso` makes, built in the same order, so
seeded runs draw the same weights. Anything else: one encoder per kept part, their
outputs concatenated, then the MLP hidden layers (`mlp_hidden`, `activation`); a lone
Nature CNN part is not followed by an MLP (its 512-unit layer is the last hidden layer,
Mnih et al. 2015).

The small CNN is MinAtar's (Young & Tian 2019, "MinAtar", examples/dqn.py): one 3x3
convolution with 16 channels, stride 1, no padding, ReLU, flattened (10x10 -> 8x8x16 =
1,024 features; their 128-unit layer is then the MLP's first hidden layer). Grids with
a side under 3 get padding 1. MiniGrid's RL starter files (torch-ac's ACModel) use three
2x2 convolutions (16, 32, 64 channels) with a 2x2 max-pool, a network sized for the 7x7
view only (64 features); one 3x3 layer fits 7x7 (5x5x16 = 400 features), 10x10 and any
other grid with the same rule.

Settings (`EncoderSettings`, for an agent's config): `torso` is `auto`, one kind for
every part a network can use (the others stay dropped), or part name -> kind
(`{image: flat}`); kinds: auto, flat, onehot, cnn, nature, drop. `scale` is part name
-> input factor. A plain space is one part named `observation`
(`--set encoder.torso.observation=cnn`). Unknown part names and kinds a part cannot
take are one-line UserErrors that name them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field, PositiveFloat
from torch import nn

from rlkit.config import StrictModel
from rlkit.errors import UserError, suggest
from rlkit.networks import MLP, Activation, NatureCNN, is_image_space
from rlkit.observations import Part, PathKey, get_part, observation_parts

TorsoKind = Literal["auto", "flat", "onehot", "cnn", "nature", "drop"]
Layout = Literal["CHW", "HWC", "HW"]

NATURE_MIN_SIDE = 36  # 8x8/4, 4x4/2, 3x3/1 need 36 pixels to leave one
SMALL_CNN_CHANNELS = 16  # MinAtar's DQN (Young & Tian 2019)
SMALL_CNN_KERNEL = 3


class EncoderSettings(StrictModel):
    """Which torso encodes each part of the observation (see rlkit.encoders)."""

    torso: TorsoKind | dict[str, TorsoKind] = Field(
        default="auto",
        description="auto, or one of flat, onehot, cnn, nature, drop for every part, or a "
        "mapping part name -> kind (a plain space is the part 'observation')",
    )
    scale: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="part name -> factor a flattened or small-CNN input is multiplied by "
        "(default 1/255 for uint8 images, 1 otherwise)",
    )


def encoder_field() -> Any:
    """An agent config's `encoder` setting: `encoder: EncoderSettings = encoder_field()`."""
    return Field(
        default_factory=EncoderSettings,
        description="torso per observation part (rlkit.encoders): auto, or flat, onehot, cnn, "
        "nature, drop, for all parts or by part name",
    )


@dataclass(frozen=True)
class TorsoChoice:
    """The torso one part gets: its kind, image layout and input scale."""

    part: Part
    kind: Literal["flat", "onehot", "cnn", "nature", "drop"]
    layout: Layout | None = None
    scale: float = 1.0

    def describe(self) -> str:
        """`image: small CNN (7x7x3 HWC uint8, x1/255)`, `direction: one-hot(4)`, ..."""
        space = self.part.space
        if self.kind == "drop":
            reason = self.part.dropped or type(space).__name__
            return f"{self.part.name}: dropped ({reason})"
        scaled = "" if self.scale == 1.0 else f", x{_factor(self.scale)}"
        if self.kind == "onehot":
            return f"{self.part.name}: one-hot({_one_hot_sizes(space)})"
        shape = "x".join(str(size) for size in self.part.shape) or "1"
        dtype = np.dtype(space.dtype).name if space.dtype is not None else "int64"
        if self.kind == "flat":
            return f"{self.part.name}: flat ({shape} {dtype}{scaled})"
        name = "Nature CNN" if self.kind == "nature" else "small CNN"
        return f"{self.part.name}: {name} ({shape} {self.layout} {dtype}{scaled})"


def _factor(scale: float) -> str:
    return "1/255" if scale == 1.0 / 255.0 else f"{scale:g}"


def _one_hot_sizes(space: gym.Space[Any]) -> str:
    if isinstance(space, gym.spaces.Discrete):
        start = int(space.start)
        return f"{int(space.n)}" + (f" from {start}" if start else "")
    assert isinstance(space, gym.spaces.MultiDiscrete)
    sizes = "+".join(str(int(size)) for size in space.nvec.flatten())
    starts = space.start.flatten()
    return sizes + (f" from {starts.tolist()}" if starts.any() else "")


# ------------------------------------------------------------------- choosing torsos


def image_layout(space: gym.spaces.Box) -> Layout | None:
    """How a rank-2 or rank-3 Box reads as an image (module docstring); None otherwise."""
    shape = space.shape
    if len(shape) == 2:
        return "HW"
    if len(shape) != 3:
        return None
    if is_image_space(space):
        return "CHW"
    return "CHW" if shape[0] < shape[-1] else "HWC"


def _image_size(shape: tuple[int, ...], layout: Layout) -> tuple[int, int, int]:
    """(channels, height, width) of an image of `shape` in `layout`."""
    if layout == "HW":
        return 1, shape[0], shape[1]
    if layout == "CHW":
        return shape[0], shape[1], shape[2]
    return shape[2], shape[0], shape[1]


def is_image_like(space: gym.Space[Any]) -> bool:
    """A Box the auto rule sends to a CNN: uint8 (H, W), or rank 3 of uint8, bool or int."""
    if not isinstance(space, gym.spaces.Box):
        return False
    dtype = np.dtype(space.dtype)
    if len(space.shape) == 2:
        return dtype == np.uint8
    return len(space.shape) == 3 and dtype.kind in "biu"


def _auto_kind(part: Part) -> Literal["flat", "onehot", "cnn", "nature", "drop"]:
    space = part.space
    if not part.kept:
        return "drop"
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        return "onehot"
    if isinstance(space, gym.spaces.Box) and is_image_like(space):
        layout = image_layout(space)
        assert layout is not None
        _, height, width = _image_size(space.shape, layout)
        big = min(height, width) >= NATURE_MIN_SIDE
        return "nature" if big and space.dtype == np.uint8 else "cnn"
    return "flat"


def _refuse(part: Part, kind: str, needs: str) -> UserError:
    space = part.space if part.kept else type(part.space).__name__  # some reprs span lines
    return UserError(f"encoder.torso.{part.name}: {kind} needs {needs}; {part.name} is {space}")


def _check_kind(part: Part, kind: str) -> None:
    """UserError when `part` cannot take torso `kind`."""
    space = part.space
    if kind == "drop":
        return
    if not part.kept:
        raise _refuse(part, kind, "a Box, Discrete, MultiDiscrete or MultiBinary part (or drop)")
    if kind == "onehot" and not isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        raise _refuse(part, kind, "a Discrete or MultiDiscrete part")
    image = isinstance(space, gym.spaces.Box) and image_layout(space) is not None
    if kind in ("cnn", "nature") and not image:
        raise _refuse(part, kind, "a Box of rank 2 (H, W) or 3 (CHW or HWC)")
    if kind == "nature":
        assert isinstance(space, gym.spaces.Box)
        layout = image_layout(space)
        assert layout is not None
        _, height, width = _image_size(space.shape, layout)
        if space.dtype != np.uint8 or min(height, width) < NATURE_MIN_SIDE:
            raise _refuse(
                part, kind, f"uint8 frames of at least {NATURE_MIN_SIDE}x{NATURE_MIN_SIDE}"
            )


def choose_torsos(
    observation_space: gym.Space[Any], settings: EncoderSettings | None = None
) -> list[TorsoChoice]:
    """The torso of every part of `observation_space` (dropped parts included), in order."""
    settings = settings if settings is not None else EncoderSettings()
    parts = observation_parts(observation_space)
    names = [part.name for part in parts]
    for setting, mapping in (("torso", settings.torso), ("scale", settings.scale)):
        if isinstance(mapping, dict):
            for name in mapping:
                if name not in names:
                    raise UserError(
                        f"encoder.{setting}.{name}: the observation has no part '{name}'"
                        f"{suggest(name, names)}; parts: {', '.join(names)}"
                    )
    choices = []
    for part in parts:
        if isinstance(settings.torso, dict):
            wanted = settings.torso.get(part.name, "auto")
        else:  # one kind for every part a network can use; the others stay dropped
            wanted = settings.torso if part.kept else "auto"
        kind = _auto_kind(part) if wanted == "auto" else wanted
        _check_kind(part, kind)
        layout: Layout | None = None
        scale = 1.0
        if kind in ("cnn", "nature"):
            assert isinstance(part.space, gym.spaces.Box)
            layout = image_layout(part.space)
            if part.space.dtype == np.uint8:
                scale = 1.0 / 255.0
        if part.name in settings.scale:
            if kind not in ("flat", "cnn"):
                raise UserError(
                    f"encoder.scale.{part.name}: only flattened and small-CNN inputs take a "
                    f"scale; {part.name} is encoded by {kind}"
                )
            scale = float(settings.scale[part.name])
        choices.append(TorsoChoice(part, kind, layout, scale))
    return choices


def explicit_settings(
    observation_space: gym.Space[Any], settings: EncoderSettings | None = None
) -> EncoderSettings:
    """`settings` with `auto` decided: part name -> kind for every part, as a run keeps
    them in its config.yaml (a resumed or evaluated run builds the same torsos)."""
    settings = settings if settings is not None else EncoderSettings()
    choices = choose_torsos(observation_space, settings)
    torso: dict[str, TorsoKind] = {choice.part.name: choice.kind for choice in choices}
    return settings.model_copy(update={"torso": torso})


def describe_parts(
    observation_space: gym.Space[Any], settings: EncoderSettings | None = None
) -> str:
    """One line: the torso of every part (`describe_encoder` without the MLP)."""
    return "; ".join(choice.describe() for choice in choose_torsos(observation_space, settings))


def _mlp_words(mlp_hidden: Sequence[int]) -> str:
    return "MLP " + "x".join(str(size) for size in mlp_hidden) if mlp_hidden else "no MLP"


def describe_encoder(
    observation_space: gym.Space[Any],
    mlp_hidden: Sequence[int],
    settings: EncoderSettings | None = None,
) -> str:
    """One line: every part's torso, then the MLP (what `build_encoder` builds)."""
    choices = choose_torsos(observation_space, settings)
    parts = "; ".join(choice.describe() for choice in choices)
    kept = [choice for choice in choices if choice.kind != "drop"]
    if len(kept) == 1 and kept[0].kind == "nature":
        return parts
    return f"{parts} -> {_mlp_words(mlp_hidden)}"


def dropped_parts(
    observation_space: gym.Space[Any], settings: EncoderSettings | None = None
) -> str:
    """A one-line note naming the parts left out ('' when none is): print it at the start."""
    dropped = [
        choice for choice in choose_torsos(observation_space, settings) if choice.kind == "drop"
    ]
    if not dropped:
        return ""
    named = ", ".join(choice.describe().replace(": dropped", "") for choice in dropped)
    return f"observation parts no network uses, dropped: {named}"


# ------------------------------------------------------------------- part encoders


class FlatPart(nn.Module):
    """A part flattened to floats, times `scale`: [B, *shape] -> [B, prod(shape)]."""

    def __init__(self, shape: tuple[int, ...], scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.output_dim = int(np.prod(shape))

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        flat = values.reshape(values.shape[0], -1).float()
        return flat if self.scale == 1.0 else flat * self.scale


class OneHotPart(nn.Module):
    """Discrete / MultiDiscrete indices -> concatenated one-hot vectors (honours `start`)."""

    def __init__(self, space: gym.spaces.Discrete | gym.spaces.MultiDiscrete) -> None:
        super().__init__()
        if isinstance(space, gym.spaces.Discrete):
            sizes = np.array([int(space.n)])
            starts = np.array([int(space.start)])
        else:
            sizes = space.nvec.flatten().astype(np.int64)
            starts = space.start.flatten().astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.register_buffer("shift", torch.as_tensor(offsets - starts), persistent=False)
        self.output_dim = int(sizes.sum())

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        shift: torch.Tensor = self.get_buffer("shift")
        columns = values.reshape(values.shape[0], -1).long() + shift
        encoded = torch.zeros(values.shape[0], self.output_dim, device=values.device)
        return encoded.scatter_(1, columns, 1.0)


def _channels_first(images: torch.Tensor, layout: Layout) -> torch.Tensor:
    """[B, ...] images in `layout` -> [B, C, H, W]."""
    if layout == "HW":
        return images.unsqueeze(1)
    if layout == "HWC":
        return images.permute(0, 3, 1, 2)
    return images


class SmallCNN(nn.Module):
    """MinAtar's torso (Young & Tian 2019): 3x3 conv, 16 channels, stride 1, ReLU, flatten.

    Input [B, *shape] in `layout` (CHW, HWC or HW), any dtype, times `scale`; output
    [B, 16 * H' * W'], H' = H - 2 (H with padding 1 when a side is under 3).
    """

    def __init__(self, shape: tuple[int, ...], layout: Layout, scale: float = 1.0) -> None:
        super().__init__()
        channels, height, width = _image_size(shape, layout)
        padding = 0 if min(height, width) >= SMALL_CNN_KERNEL else 1
        self.layout: Layout = layout
        self.scale = scale
        self.conv = nn.Conv2d(
            channels, SMALL_CNN_CHANNELS, kernel_size=SMALL_CNN_KERNEL, stride=1, padding=padding
        )
        out_height = height + 2 * padding - SMALL_CNN_KERNEL + 1
        out_width = width + 2 * padding - SMALL_CNN_KERNEL + 1
        self.output_dim = SMALL_CNN_CHANNELS * out_height * out_width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        inputs = _channels_first(images, self.layout).float()
        if self.scale != 1.0:
            inputs = inputs * self.scale
        return torch.relu(self.conv(inputs)).flatten(1)


class NaturePart(nn.Module):
    """`NatureCNN` on images in any layout (HWC and HW are turned channel-first)."""

    def __init__(self, shape: tuple[int, ...], layout: Layout) -> None:
        super().__init__()
        channels, height, width = _image_size(shape, layout)
        self.layout: Layout = layout
        self.cnn = NatureCNN(in_channels=channels, frame_size=(height, width))
        self.output_dim = self.cnn.output_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(_channels_first(images, self.layout))  # type: ignore[no-any-return]


def _output_dim(module: nn.Module) -> int:
    return int(module.output_dim)  # type: ignore[arg-type]


def _part_encoder(choice: TorsoChoice) -> nn.Module:
    part = choice.part
    if choice.kind == "onehot":
        assert isinstance(part.space, gym.spaces.Discrete | gym.spaces.MultiDiscrete)
        return OneHotPart(part.space)
    if choice.kind == "cnn":
        assert choice.layout is not None
        return SmallCNN(part.shape, choice.layout, choice.scale)
    if choice.kind == "nature":
        assert choice.layout is not None
        return NaturePart(part.shape, choice.layout)
    return FlatPart(part.shape, choice.scale)


class ObservationEncoder(nn.Module):
    """One encoder per kept part, outputs concatenated, then the MLP hidden layers.

    Takes the observation as `rlkit.observations` converts it: a tensor for a plain
    space, a dict/tuple of tensors for a Dict/Tuple, with any number of leading batch
    axes ([B, ...] or [T, B, ...]); returns [*batch, output_dim].
    """

    def __init__(
        self,
        choices: Sequence[TorsoChoice],
        mlp_hidden: Sequence[int],
        activation: Activation = "relu",
        *,
        description: str = "",
    ) -> None:
        super().__init__()
        kept = [choice for choice in choices if choice.kind != "drop"]
        if not kept:
            named = ", ".join(choice.describe() for choice in choices) or "an empty space"
            raise UserError(f"no part of the observation can feed a network: {named}")
        self.paths: list[tuple[PathKey, ...]] = [choice.part.path for choice in kept]
        self.shapes: list[tuple[int, ...]] = [choice.part.shape for choice in kept]
        self.parts = nn.ModuleList(_part_encoder(choice) for choice in kept)
        width = sum(_output_dim(module) for module in self.parts)
        lone_nature = len(kept) == 1 and kept[0].kind == "nature"
        self.mlp = None if lone_nature else MLP(width, mlp_hidden, activation)
        self.output_dim = width if self.mlp is None else self.mlp.output_dim
        self.description = description

    def forward(self, observations: Any) -> torch.Tensor:
        features = []
        batch: tuple[int, ...] = ()
        for path, shape, module in zip(self.paths, self.shapes, self.parts, strict=True):
            values: torch.Tensor = get_part(observations, path)
            batch = tuple(values.shape[: values.dim() - len(shape)])
            features.append(module(values.reshape(-1, *shape)))
        joined = torch.cat(features, dim=1) if len(features) > 1 else features[0]
        encoded = joined if self.mlp is None else self.mlp(joined)
        return encoded.reshape(*batch, -1)


def build_encoder(
    observation_space: gym.Space[Any],
    mlp_hidden: Sequence[int],
    activation: Activation = "relu",
    *,
    settings: EncoderSettings | None = None,
) -> nn.Module:
    """The torso for `observation_space` (module docstring); `.output_dim` is set.

    A flat Box gives `MLP(prod(shape), mlp_hidden, activation)` and an Atari stack
    `NatureCNN(C, H)`, as `rlkit.networks.build_torso` does; everything else an
    `ObservationEncoder`.
    """
    choices = choose_torsos(observation_space, settings)
    if len(choices) == 1 and choices[0].part.path == () and choices[0].scale == 1.0:
        kind = choices[0].kind
        if kind == "flat" and isinstance(observation_space, gym.spaces.Box):
            return MLP(int(np.prod(observation_space.shape)), mlp_hidden, activation)
    if len(choices) == 1 and choices[0].kind == "nature" and is_image_space(observation_space):
        channels, size, _ = observation_space.shape  # type: ignore[misc]
        return NatureCNN(in_channels=channels, frame_size=size)
    description = describe_encoder(observation_space, mlp_hidden, settings)
    return ObservationEncoder(choices, mlp_hidden, activation, description=description)
