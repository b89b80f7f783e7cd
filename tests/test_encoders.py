"""Encoders for every observation space, observation conversion and the nested helpers.

Real MiniGrid and MinAtar observations; `build_torso`'s modules for a Box, weight for weight.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import minatar.gym
import minigrid  # noqa: F401  (registers the MiniGrid envs)
import numpy as np
import pytest
import torch
from torch import nn

from rlkit.config import validate
from rlkit.encoders import (
    EncoderSettings,
    NaturePart,
    ObservationEncoder,
    OneHotPart,
    SmallCNN,
    build_encoder,
    choose_torsos,
    describe_encoder,
    dropped_parts,
)
from rlkit.errors import UserError
from rlkit.networks import MLP, NatureCNN, build_torso
from rlkit.observations import (
    concatenate,
    index,
    leading_shape,
    leaves,
    observation_arrays,
    observation_parts,
    observation_tensors,
    reshape_leading,
    stack,
    stack_observations,
    to_device,
)
from rlkit.policies import ActorCritic, observation_tensor
from tests.spaces_envs import DICT_CUE_ID

MINIGRID = "MiniGrid-Empty-5x5-v0"
MINATAR = "MinAtar/Breakout-v1"
ATARI_STACK = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: these small networks run several times faster on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def _minatar_registered() -> None:
    if MINATAR not in gym.registry:
        minatar.gym.register_envs()


def observations_of(env_id: str, count: int, **kwargs: Any) -> tuple[gym.Env[Any, Any], list[Any]]:
    """The env and `count` observations of a seeded random walk in it."""
    env = gym.make(env_id, **kwargs)
    observation, _ = env.reset(seed=0)
    env.action_space.seed(0)
    seen = [observation]
    while len(seen) < count:
        observation, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            observation, _ = env.reset()
        seen.append(observation)
    return env, seen


def parameters(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(name, param.detach().clone()) for name, param in module.named_parameters()]


# ------------------------------------------------------------ Box: today's modules


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
        gym.spaces.Box(-1.0, 1.0, (2, 3), np.float64),
        gym.spaces.Box(0, 255, (128,), np.uint8),  # Atari RAM: flattened, unscaled, as today
        gym.spaces.Box(0, 1, (6,), np.bool_),
        ATARI_STACK,
    ],
    ids=["float32", "float64-2d", "uint8-ram", "bool-vector", "atari-stack"],
)
def test_box_builds_build_torsos_module_with_the_same_weights(space: gym.spaces.Box) -> None:
    torch.manual_seed(7)
    reference = build_torso(space, (32, 16), "tanh")
    after_reference = torch.rand(3)
    torch.manual_seed(7)
    built = build_encoder(space, (32, 16), "tanh")
    after_built = torch.rand(3)
    assert type(built) is type(reference)
    assert type(built) in (MLP, NatureCNN)
    assert built.output_dim == reference.output_dim
    ours, theirs = parameters(built), parameters(reference)
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for (name, mine), (_, expected) in zip(ours, theirs, strict=True):
        assert torch.equal(mine, expected), name
    assert torch.equal(after_built, after_reference)  # the RNG drew the same numbers
    batch = stack_observations([space.sample() for _ in range(3)], space)
    torch.testing.assert_close(built(batch), reference(batch), rtol=0, atol=0)


def test_actor_critic_encoders_are_the_builders_modules_for_a_box() -> None:
    """Swapping build_torso for build_encoder inside ActorCritic changes no weight."""
    space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    for shared in (True, False):
        torch.manual_seed(11)
        policy = ActorCritic(space, gym.spaces.Discrete(2), hidden=(8, 8), shared_torso=shared)
        torch.manual_seed(11)
        encoder = build_encoder(space, (8, 8), "relu")
        for (name, mine), (_, expected) in zip(
            parameters(encoder), parameters(policy.encoder), strict=True
        ):
            assert torch.equal(mine, expected), name


def test_box_observations_convert_as_observation_tensor_does() -> None:
    for space in (
        gym.spaces.Box(-1.0, 1.0, (3,), np.float64),
        gym.spaces.Box(-1.0, 1.0, (3,), np.float32),
        ATARI_STACK,
        gym.spaces.Box(0, 1, (10, 10, 4), np.bool_),
    ):
        samples = [space.sample() for _ in range(2)]
        one = observation_tensors(samples[0], space)
        assert one.dtype == observation_tensor(samples[0]).dtype
        assert torch.equal(one, observation_tensor(samples[0]))
        batch = stack_observations(samples, space)
        assert torch.equal(batch, observation_tensor(np.stack(samples)))
        assert batch.dtype == observation_tensor(np.stack(samples)).dtype


# ------------------------------------------------------------ the rules, part by part


@pytest.mark.parametrize(
    ("space", "line", "module"),
    [
        (ATARI_STACK, "observation: Nature CNN (4x84x84 CHW uint8, x1/255)", NatureCNN),
        (
            gym.spaces.Box(0, 255, (84, 84, 4), np.uint8),
            "observation: Nature CNN (84x84x4 HWC uint8, x1/255)",
            ObservationEncoder,
        ),
        (
            gym.spaces.Box(0, 255, (210, 160, 3), np.uint8),
            "observation: Nature CNN (210x160x3 HWC uint8, x1/255)",
            ObservationEncoder,
        ),
        (
            gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
            "observation: small CNN (7x7x3 HWC uint8, x1/255) -> MLP 64x64",
            ObservationEncoder,
        ),
        (
            gym.spaces.Box(0, 1, (10, 10, 4), np.bool_),
            "observation: small CNN (10x10x4 HWC bool) -> MLP 64x64",
            ObservationEncoder,
        ),
        (
            gym.spaces.Box(0, 9, (3, 6, 5), np.int64),
            "observation: small CNN (3x6x5 CHW int64) -> MLP 64x64",
            ObservationEncoder,
        ),
        (
            gym.spaces.Box(0, 255, (12, 9), np.uint8),
            "observation: small CNN (12x9 HW uint8, x1/255) -> MLP 64x64",
            ObservationEncoder,
        ),
        (
            gym.spaces.Box(0, 1, (12, 9), np.bool_),
            "observation: flat (12x9 bool) -> MLP 64x64",
            MLP,
        ),
        (
            gym.spaces.Box(0.0, 1.0, (4, 84, 84), np.float32),
            "observation: flat (4x84x84 float32) -> MLP 64x64",
            MLP,
        ),
        (gym.spaces.Discrete(5, start=-2), "observation: one-hot(5 from -2) -> MLP 64x64", None),
        (gym.spaces.MultiDiscrete([3, 2]), "observation: one-hot(3+2) -> MLP 64x64", None),
        (gym.spaces.MultiBinary(5), "observation: flat (5 int8) -> MLP 64x64", None),
    ],
)
def test_each_space_gets_its_torso_and_one_line(
    space: gym.Space[Any], line: str, module: type[nn.Module] | None
) -> None:
    assert describe_encoder(space, (64, 64)) == line
    encoder = build_encoder(space, (64, 64))
    if module is not None:
        assert type(encoder) is module
    batch = stack_observations([space.sample() for _ in range(3)], space)
    features = encoder(batch)
    assert features.shape == (3, encoder.output_dim)
    assert features.dtype == torch.float32 and torch.isfinite(features).all()


def test_minigrid_observation_is_encoded_part_by_part() -> None:
    env, seen = observations_of(MINIGRID, 6)
    space = env.observation_space
    line = describe_encoder(space, (64, 64))
    assert line == (
        "direction: one-hot(4); image: small CNN (7x7x3 HWC uint8, x1/255); "
        "mission: dropped (MissionSpace) -> MLP 64x64"
    )
    assert (
        dropped_parts(space) == "observation parts no network uses, dropped: mission (MissionSpace)"
    )
    torch.manual_seed(0)
    encoder = build_encoder(space, (64, 64))
    assert isinstance(encoder, ObservationEncoder) and encoder.description == line
    kinds = [type(module) for module in encoder.parts]
    assert kinds == [OneHotPart, SmallCNN]
    assert encoder.parts[1].output_dim == 5 * 5 * 16  # 7x7, 3x3 conv, no padding
    batch = stack_observations(seen, space)
    assert set(batch) == {"direction", "image"}  # the mission string is left out
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (6, 7, 7, 3)
    assert batch["direction"].dtype == torch.int64 and batch["direction"].shape == (6,)
    features = encoder(batch)
    assert features.shape == (6, 64)
    # [T, B] leading axes, as rollouts store them, and one observation without any
    steps = stack([index(batch, slice(0, 3)), index(batch, slice(3, 6))])
    torch.testing.assert_close(encoder(steps), features.reshape(2, 3, 64))
    torch.testing.assert_close(encoder(observation_tensors(seen[4], space)), features[4])


def test_minigrid_vector_env_batches_convert_like_single_observations() -> None:
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(MINIGRID) for _ in range(3)])
    batched, _ = envs.reset(seed=5)
    single_space = envs.single_observation_space
    arrays = observation_arrays(batched, single_space)
    assert set(arrays) == {"direction", "image"}
    assert arrays["image"].dtype == np.uint8 and arrays["direction"].dtype == np.int64
    singles = [gym.make(MINIGRID).reset(seed=5 + i)[0] for i in range(3)]
    stacked = stack_observations(singles, single_space)
    for name in ("direction", "image"):
        np.testing.assert_array_equal(arrays[name], stacked[name].numpy())


def test_minatar_grid_is_hwc_bool_through_minatars_cnn() -> None:
    env, seen = observations_of(MINATAR, 4)
    space = env.observation_space
    assert describe_encoder(space, (128,)) == "observation: small CNN (10x10x4 HWC bool) -> MLP 128"
    encoder = build_encoder(space, (128,))
    assert isinstance(encoder, ObservationEncoder)
    cnn = encoder.parts[0]
    assert isinstance(cnn, SmallCNN) and cnn.conv.in_channels == 4
    assert cnn.output_dim == 1024  # 8x8x16 -> MinAtar's 128-unit layer
    assert encoder.mlp is not None and encoder.mlp.body[0].in_features == 1024
    batch = stack_observations(seen, space)
    assert batch.dtype == torch.bool
    assert encoder(batch).shape == (4, 128)


def test_small_cnn_reads_hwc_as_the_same_image_in_chw() -> None:
    torch.manual_seed(1)
    hwc = SmallCNN((6, 7, 3), "HWC")
    chw = SmallCNN((3, 6, 7), "CHW")
    chw.load_state_dict(hwc.state_dict())
    images = torch.rand(2, 6, 7, 3)
    torch.testing.assert_close(hwc(images), chw(images.permute(0, 3, 1, 2)))
    assert hwc.output_dim == 16 * 4 * 5
    tiny = SmallCNN((2, 2, 1), "HWC")  # a side under 3: padding 1 keeps 2x2
    assert tiny(torch.rand(5, 2, 2, 1)).shape == (5, tiny.output_dim) and tiny.output_dim == 64


def test_uint8_images_are_scaled_and_bool_ones_are_not() -> None:
    torch.manual_seed(2)
    uint8 = SmallCNN((5, 5, 1), "HWC", scale=1.0 / 255.0)
    floats = SmallCNN((5, 5, 1), "HWC")
    floats.load_state_dict(uint8.state_dict())
    images = torch.randint(0, 256, (3, 5, 5, 1), dtype=torch.uint8)
    torch.testing.assert_close(uint8(images), floats(images.float() / 255.0))
    [choice] = choose_torsos(gym.spaces.Box(0, 1, (5, 5, 2), np.bool_))
    assert choice.scale == 1.0


def test_nature_part_turns_hwc_channel_first() -> None:
    torch.manual_seed(3)
    part = NaturePart((84, 84, 4), "HWC")
    cnn = NatureCNN(in_channels=4, frame_size=84)
    cnn.load_state_dict(part.cnn.state_dict())
    frames = torch.randint(0, 256, (2, 84, 84, 4), dtype=torch.uint8)
    torch.testing.assert_close(part(frames), cnn(frames.permute(0, 3, 1, 2)))


def test_one_hot_honours_start_in_every_dimension() -> None:
    discrete = OneHotPart(gym.spaces.Discrete(3, start=-1))
    torch.testing.assert_close(discrete(torch.tensor([-1, 0, 1])), torch.eye(3))
    multi = OneHotPart(gym.spaces.MultiDiscrete([[2, 3]], start=[[1, 5]]))
    encoded = multi(torch.tensor([[[1, 7]], [[2, 5]]]))
    expected = torch.tensor([[1.0, 0, 0, 0, 1], [0, 1, 1, 0, 0]])
    torch.testing.assert_close(encoded, expected)


def test_dict_and_tuple_parts_are_concatenated_in_order_and_all_learn() -> None:
    for structure in ("dict", "tuple"):
        env, seen = observations_of(DICT_CUE_ID, 5, structure=structure)
        space = env.observation_space
        names = [part.name for part in observation_parts(space)]
        if structure == "dict":
            assert names == ["cue", "image", "mission", "status/flags", "status/vector"]
        else:
            assert names == ["0", "1", "2/0", "2/1", "3"]
        torch.manual_seed(4)
        encoder = build_encoder(space, (16,))
        assert isinstance(encoder, ObservationEncoder)
        assert [type(module).__name__ for module in encoder.parts] == [
            *(["OneHotPart", "SmallCNN"] if structure == "dict" else ["SmallCNN", "OneHotPart"]),
            "FlatPart",
            "FlatPart",
        ]
        batch = stack_observations(seen, space)
        if structure == "tuple":
            assert batch[3] is None  # the Text part, dropped
        encoder(batch).square().sum().backward()
        for name, param in encoder.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cue", ["image", "discrete", "vector", "binary"])
def test_each_part_encoder_carries_the_cue(cue: str) -> None:
    """Supervised: encoder + linear layer predict the goal from the part that shows it."""
    env, _ = observations_of(DICT_CUE_ID, 1, cue=cue)
    space = env.observation_space
    unwrapped = env.unwrapped
    observations, goals = [], []
    for _ in range(128):
        observations.append(unwrapped._observation())  # type: ignore[attr-defined]
        goals.append(unwrapped._goal)  # type: ignore[attr-defined]
        unwrapped._goal = int(unwrapped.np_random.integers(0, 2))  # type: ignore[attr-defined]
    batch = stack_observations(observations, space)
    targets = torch.tensor(goals, dtype=torch.float32)
    torch.manual_seed(5)
    encoder = build_encoder(space, (16,))
    readout = nn.Linear(encoder.output_dim, 1)
    optimizer = torch.optim.Adam([*encoder.parameters(), *readout.parameters()], lr=0.01)
    for _ in range(100):
        logits = readout(encoder(batch)).squeeze(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = float(((logits > 0).float() == targets).float().mean())
    assert accuracy > 0.97, (cue, accuracy)


def test_unusable_parts_are_dropped_and_nothing_usable_is_an_error() -> None:
    space = gym.spaces.Dict(
        {
            "text": gym.spaces.Text(5),
            "graph": gym.spaces.Graph(gym.spaces.Box(0, 1, (2,)), None),
            "sequence": gym.spaces.Sequence(gym.spaces.Discrete(3)),
            "position": gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
    )
    assert describe_encoder(space, (8,)) == (
        "graph: dropped (Graph); position: flat (2 float32); sequence: dropped (Sequence); "
        "text: dropped (Text) -> MLP 8"
    )
    sample = space.sample()
    batch = stack_observations([sample, sample], space)
    assert list(batch) == ["position"]
    assert build_encoder(space, (8,))(batch).shape == (2, 8)
    with pytest.raises(UserError, match=r"no part of the observation can feed a network: text"):
        build_encoder(gym.spaces.Dict({"text": gym.spaces.Text(5)}), (8,))
    with pytest.raises(UserError, match="observation: dropped"):
        build_encoder(gym.spaces.Text(5), (8,))


# ------------------------------------------------------------ settings


def test_settings_override_the_torso_of_a_part_or_of_all() -> None:
    env = gym.make(MINIGRID)
    space = env.observation_space
    flat = EncoderSettings(torso={"image": "flat"}, scale={"image": 0.1})
    assert describe_encoder(space, (32,), flat).startswith(
        "direction: one-hot(4); image: flat (7x7x3 uint8, x0.1);"
    )
    everything_flat = EncoderSettings(torso="flat")
    assert "direction: flat (1 int64)" in describe_encoder(space, (32,), everything_flat)
    dropped = EncoderSettings(torso={"direction": "drop"})
    encoder = build_encoder(space, (32,), settings=dropped)
    assert "direction: dropped (Discrete)" in describe_encoder(space, (32,), dropped)
    assert isinstance(encoder, ObservationEncoder) and len(encoder.parts) == 1
    box = gym.spaces.Box(-1.0, 1.0, (3, 8, 8), np.float32)
    as_image = EncoderSettings(torso={"observation": "cnn"})
    assert describe_encoder(box, (32,), as_image) == (
        "observation: small CNN (3x8x8 CHW float32) -> MLP 32"
    )
    scaled_box = build_encoder(
        gym.spaces.Box(0, 255, (4,), np.uint8),
        (8,),
        settings=EncoderSettings(scale={"observation": 0.5}),
    )
    assert isinstance(scaled_box, ObservationEncoder)  # no longer today's bare MLP


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"torso": {"imag": "cnn"}},
            "encoder.torso.imag: the observation has no part 'imag' "
            "(did you mean 'image'?); parts: direction, image, mission",
        ),
        ({"torso": {"direction": "cnn"}}, "encoder.torso.direction: cnn needs a Box of rank 2"),
        (
            {"torso": {"image": "nature"}},
            "encoder.torso.image: nature needs uint8 frames of at least 36x36",
        ),
        ({"torso": {"image": "onehot"}}, "encoder.torso.image: onehot needs a Discrete"),
        ({"torso": {"mission": "flat"}}, "encoder.torso.mission: flat needs a Box, Discrete"),
        ({"scale": {"direction": 2.0}}, "encoder.scale.direction: only flattened and small-CNN"),
        ({"torso": "cnn"}, "encoder.torso.direction: cnn needs"),
    ],
)
def test_bad_settings_are_one_line_errors_naming_the_part(
    settings: dict[str, Any], message: str
) -> None:
    space = gym.make(MINIGRID).observation_space
    with pytest.raises(UserError) as error:
        build_encoder(space, (8,), settings=EncoderSettings.model_validate(settings))
    assert str(error.value).startswith(message), str(error.value)
    assert "\n" not in str(error.value)


def test_settings_validate_as_config_with_errors_naming_the_key() -> None:
    parsed = validate(EncoderSettings, {"torso": {"image": "flat"}}, {}, "encoder")
    assert parsed.torso == {"image": "flat"}
    with pytest.raises(UserError, match="torso"):
        validate(EncoderSettings, {"torso": {"image": "convnet"}}, {}, "encoder")
    with pytest.raises(UserError, match="scale"):
        validate(EncoderSettings, {"scale": {"image": -1.0}}, {}, "encoder")
    with pytest.raises(UserError, match="unknown key 'torsos'"):
        validate(EncoderSettings, {"torsos": "flat"}, {}, "encoder")


# ------------------------------------------------------------ conversion and helpers


def test_conversion_keeps_compact_dtypes() -> None:
    space = gym.spaces.Dict(
        {
            "frame": gym.spaces.Box(0, 255, (3, 3), np.uint8),
            "grid": gym.spaces.Box(0, 1, (2, 2, 2), np.bool_),
            "vector": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
            "wide": gym.spaces.Box(0, 60_000, (2,), np.uint16),
            "index": gym.spaces.Discrete(4),
            "indices": gym.spaces.MultiDiscrete([2, 3]),
            "flags": gym.spaces.MultiBinary(3),
            "inner": gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Text(3))),
        }
    )
    sample = space.sample()
    sample["index"] = 3  # an env may return a plain int
    one = observation_tensors(sample, space)
    dtypes = {name: value.dtype for name, value in one.items() if name != "inner"}
    assert dtypes == {
        "frame": torch.uint8,
        "grid": torch.bool,
        "vector": torch.float32,
        "wide": torch.int32,
        "index": torch.int64,
        "indices": torch.int64,
        "flags": torch.int8,
    }
    assert one["index"].shape == () and one["inner"][1] is None
    batch = stack_observations([sample, space.sample()], space)
    assert batch["index"].shape == (2,) and batch["inner"][0].dtype == torch.int64
    assert all(leaf.dtype != torch.float64 for leaf in leaves(batch))
    arrays = observation_arrays(sample, space)
    assert arrays["frame"] is sample["frame"]  # already compact: not copied


def test_nested_helpers_stack_index_reshape_and_move() -> None:
    tree = {"a": torch.arange(6).reshape(3, 2), "b": (torch.ones(3, dtype=torch.bool), None)}
    steps = stack([tree, tree, tree, tree])
    assert leading_shape(steps, 2) == (4, 3)
    flat = reshape_leading(steps, 2, (-1,))
    assert flat["a"].shape == (12, 2) and flat["b"][0].shape == (12,) and flat["b"][1] is None
    back = reshape_leading(flat, 1, (4, 3))
    assert torch.equal(back["a"], steps["a"])
    rows = index(tree, torch.tensor([2, 0]))
    assert torch.equal(rows["a"], torch.tensor([[4, 5], [0, 1]]))
    joined = concatenate([tree, rows])
    assert joined["a"].shape == (5, 2) and joined["b"][0].shape == (5,)
    moved = to_device(tree, "cpu")
    assert moved["a"].device.type == "cpu"
    arrays = stack([{"x": np.zeros(2)}, {"x": np.ones(2)}])
    assert isinstance(arrays["x"], np.ndarray) and arrays["x"].shape == (2, 2)
    plain = stack([torch.zeros(2), torch.ones(2)])  # a Box observation is a bare tensor
    assert plain.shape == (2, 2) and leading_shape(plain, 1) == (2,)
