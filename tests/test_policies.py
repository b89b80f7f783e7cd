"""Actor-critic networks: heads, the LSTM core's resets and BPTT, parameter split, helpers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal

from rlkit.errors import UserError
from rlkit.networks import MLP, NatureCNN
from rlkit.policies import (
    ActorCritic,
    CategoricalHead,
    GaussianHead,
    concatenate_states,
    flat_gradient,
    flat_parameters,
    policy_head,
    set_flat_parameters,
)

VECTOR = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
DISCRETE = gym.spaces.Discrete(4)
BOX_ACTIONS = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
T, B = 7, 3


def recurrent_net(*, shared_torso: bool = True, seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    return ActorCritic(VECTOR, DISCRETE, hidden=(16,), lstm_size=8, shared_torso=shared_torso)


def random_state(net: ActorCritic, batch: int) -> tuple[torch.Tensor, ...]:
    state = net.initial_state(batch)
    assert state is not None
    return tuple(torch.randn_like(part) for part in state)


def test_heads_give_distributions_of_the_right_shapes() -> None:
    features = torch.randn(T, B, 5)
    categorical = CategoricalHead(5, 4)(features)
    actions = categorical.sample()
    assert actions.shape == (T, B)
    assert categorical.log_prob(actions).shape == (T, B)
    assert categorical.entropy().shape == (T, B)

    gaussian = GaussianHead(5, 2, log_std_init=-0.5)(features)
    samples = gaussian.sample()
    assert samples.shape == (T, B, 2)
    assert gaussian.log_prob(samples).shape == (T, B)
    assert gaussian.entropy().shape == (T, B)
    # independent dims: log-prob is the sum of the per-dimension Normal log-probs
    normal = torch.distributions.Normal(gaussian.mean, gaussian.stddev)
    per_dimension = normal.log_prob(samples)  # type: ignore[no-untyped-call]
    torch.testing.assert_close(gaussian.log_prob(samples), per_dimension.sum(-1))


def test_gaussian_log_std_is_a_learned_state_independent_parameter() -> None:
    head = GaussianHead(5, 2, log_std_init=-0.5)
    assert any(param is head.log_std for param in head.parameters())
    first = head(torch.randn(4, 5))
    second = head(torch.randn(4, 5) * 10)
    torch.testing.assert_close(first.stddev, torch.full((4, 2), float(np.exp(-0.5))))
    torch.testing.assert_close(first.stddev, second.stddev)
    loss = -first.log_prob(torch.ones(4, 2)).sum()
    loss.backward()
    assert head.log_std.grad is not None and head.log_std.grad.abs().sum() > 0


def test_policy_head_picks_by_space_and_refuses_others() -> None:
    assert isinstance(policy_head(5, DISCRETE), CategoricalHead)
    assert isinstance(policy_head(5, BOX_ACTIONS), GaussianHead)
    for space in (
        gym.spaces.Dict({"a": DISCRETE}),
        gym.spaces.Text(4),
        gym.spaces.Box(-1.0, 1.0, (2, 2)),
    ):
        with pytest.raises(UserError, match="action space") as error:
            policy_head(5, space)
        assert str(space) in str(error.value)


def test_episode_start_mid_sequence_equals_a_fresh_episode() -> None:
    net = recurrent_net()
    observations = torch.randn(T, B, 3)
    starts = torch.zeros(T, B, dtype=torch.bool)
    starts[3, 0] = True  # env 0 begins a new episode at step 3
    state = random_state(net, B)
    distribution, values, _ = net(observations, state, starts)

    alone_starts = torch.zeros(T - 3, 1, dtype=torch.bool)
    alone_starts[0] = True
    alone, alone_values, _ = net(observations[3:, :1], random_state(net, 1), alone_starts)
    torch.testing.assert_close(values[3:, 0], alone_values[:, 0])
    torch.testing.assert_close(distribution.logits[3:, 0], alone.logits[:, 0])
    _, fresh_values, _ = net(observations[3:, :1], None, torch.zeros(T - 3, 1, dtype=torch.bool))
    torch.testing.assert_close(values[3:, 0], fresh_values[:, 0])  # None state = zeros
    # before the start, and in envs without one, the carried state matters
    zero_state = net.initial_state(B)
    _, values_from_zero, _ = net(observations, zero_state, starts)
    assert not torch.allclose(values[:3], values_from_zero[:3])
    assert not torch.allclose(values[3:, 1:], values_from_zero[3:, 1:])


@pytest.mark.parametrize("shared_torso", [True, False])
def test_forward_over_a_sequence_equals_stepping(shared_torso: bool) -> None:
    net = recurrent_net(shared_torso=shared_torso)
    observations = torch.randn(T, B, 3)
    starts = torch.rand(T, B) < 0.3
    state = random_state(net, B)
    distribution, values, final_state = net(observations, state, starts)
    stepped_state: tuple[torch.Tensor, ...] | None = state
    for t in range(T):
        step_distribution, step_values, stepped_state = net.step(
            observations[t], stepped_state, starts[t]
        )
        torch.testing.assert_close(step_values, values[t])
        torch.testing.assert_close(step_distribution.logits, distribution.logits[t])  # type: ignore[attr-defined]
    assert final_state is not None and stepped_state is not None
    assert len(final_state) == (2 if shared_torso else 4)
    for ours, theirs in zip(final_state, stepped_state, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_gradients_flow_back_through_time_but_not_across_an_episode_start() -> None:
    net = recurrent_net()
    observations = torch.randn(T, 2, 3, requires_grad=True)
    starts = torch.zeros(T, 2, dtype=torch.bool)
    starts[2, 1] = True  # env 1 starts a new episode at step 2
    _, values, _ = net(observations, None, starts)
    values[-1].sum().backward()
    grad = observations.grad
    assert grad is not None
    assert grad[0, 0].abs().sum() > 0  # the last value depends on the first observation
    assert grad[0, 1].abs().sum() == 0  # ... unless an episode started in between
    assert grad[2, 1].abs().sum() > 0


def test_memoryless_net_flattens_time_and_ignores_state() -> None:
    torch.manual_seed(0)
    net = ActorCritic(VECTOR, BOX_ACTIONS, hidden=(16, 16))
    assert not net.recurrent and net.initial_state(B) is None
    observations = torch.randn(T, B, 3)
    starts = torch.rand(T, B) < 0.5
    distribution, values, state = net(observations, None, starts)
    assert state is None and values.shape == (T, B)
    assert distribution.batch_shape == (T, B) and distribution.event_shape == (2,)
    _, other_values, _ = net(observations, None, torch.zeros(T, B, dtype=torch.bool))
    torch.testing.assert_close(values, other_values)
    _, row_values, _ = net.step(observations[4], None, starts[4])
    torch.testing.assert_close(row_values, values[4])


@pytest.mark.parametrize("recurrent", [True, False])
def test_separate_value_torso_has_disjoint_parameters_covering_all(recurrent: bool) -> None:
    net = ActorCritic(VECTOR, DISCRETE, lstm_size=8 if recurrent else None, shared_torso=False)
    policy_ids = {id(param) for param in net.policy_parameters()}
    value_ids = {id(param) for param in net.value_parameters()}
    assert not policy_ids & value_ids
    assert policy_ids | value_ids == {id(param) for param in net.parameters()}
    # the value does not depend on policy parameters at all
    observations = torch.randn(T, B, 3)
    _, values, _ = net(observations, None, torch.zeros(T, B, dtype=torch.bool))
    grads = torch.autograd.grad(values.sum(), net.policy_parameters(), allow_unused=True)
    assert all(grad is None for grad in grads)
    if recurrent:
        state = net.initial_state(B)
        assert state is not None and len(state) == 4


def test_shared_torso_belongs_to_the_policy() -> None:
    net = ActorCritic(VECTOR, DISCRETE, lstm_size=8)
    assert {id(p) for p in net.value_parameters()} == {id(p) for p in net.value_head.parameters()}
    all_ids = {id(param) for param in net.parameters()}
    assert {id(p) for p in net.policy_parameters()} == all_ids - {
        id(p) for p in net.value_head.parameters()
    }
    state = net.initial_state(B)
    assert state is not None and len(state) == 2 and state[0].shape == (B, 8)


def test_recurrent_states_index_and_concatenate_by_env() -> None:
    net = recurrent_net(shared_torso=False)
    first, second = random_state(net, 2), random_state(net, 3)
    joined = concatenate_states([first, second])
    assert joined is not None and all(part.shape == (5, 8) for part in joined)
    torch.testing.assert_close(tuple(part[2:] for part in joined), second)
    assert concatenate_states([None, None]) is None


def test_frames_get_the_nature_cnn_and_stay_uint8() -> None:
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    net = ActorCritic(frames, DISCRETE, lstm_size=16)
    assert isinstance(net.encoder, NatureCNN)
    assert isinstance(ActorCritic(VECTOR, DISCRETE).encoder, MLP)
    observations = torch.randint(0, 256, (2, 2, 4, 84, 84), dtype=torch.uint8)
    distribution, values, _ = net(observations, None, torch.ones(2, 2, dtype=torch.bool))
    assert values.shape == (2, 2) and distribution.batch_shape == (2, 2)
    # the CNN scales uint8 by 1/255 inside: the same frames as floats in [0, 1] are wrong
    _, float_values, _ = net(observations.float() / 255, None, torch.ones(2, 2, dtype=torch.bool))
    assert not torch.allclose(values, float_values)


def test_flat_parameter_helpers_round_trip() -> None:
    torch.manual_seed(0)
    net = ActorCritic(VECTOR, BOX_ACTIONS, hidden=(8,), lstm_size=4)
    params = net.policy_parameters()
    flat = flat_parameters(params)
    assert flat.shape == (sum(param.numel() for param in params),)
    set_flat_parameters(params, flat + 1.0)
    torch.testing.assert_close(flat_parameters(params), flat + 1.0)
    set_flat_parameters(params, flat)
    torch.testing.assert_close(flat_parameters(params), flat)
    with pytest.raises(ValueError, match="flat vector"):
        set_flat_parameters(params, flat[:-1])

    observations = torch.randn(T, B, 3)
    starts = torch.zeros(T, B, dtype=torch.bool)
    distribution, values, _ = net(observations, None, starts)
    loss = -distribution.log_prob(torch.zeros(T, B, 2)).mean() + values.square().mean()
    gradient = flat_gradient(loss, params, retain_graph=True)
    loss.backward()
    expected = torch.cat([param.grad.reshape(-1) for param in params])  # type: ignore[union-attr]
    torch.testing.assert_close(gradient, expected)

    # create_graph: a Fisher-vector product (TRPO) through the flat gradient of the KL
    distribution, _, _ = net(observations, None, starts)
    assert isinstance(distribution, Independent) and isinstance(distribution.base_dist, Normal)
    fixed = Independent(Normal(distribution.mean.detach(), distribution.stddev.detach()), 1)
    kl = torch.distributions.kl_divergence(fixed, distribution).mean()
    grad_kl = flat_gradient(kl, params, create_graph=True)
    torch.testing.assert_close(grad_kl, torch.zeros_like(grad_kl))  # KL is minimal here
    product = flat_gradient(grad_kl @ torch.ones_like(grad_kl), params)
    assert product.shape == grad_kl.shape and product.abs().sum() > 0


def test_activation_chooses_the_mlp_units_of_both_encoders() -> None:
    def units(module: torch.nn.Module) -> set[type]:
        return {type(m) for m in module.modules() if isinstance(m, torch.nn.ReLU | torch.nn.Tanh)}

    tanh = ActorCritic(VECTOR, DISCRETE, hidden=(8, 8), shared_torso=False, activation="tanh")
    assert tanh.value_encoder is not None
    assert units(tanh.encoder) == units(tanh.value_encoder) == {torch.nn.Tanh}
    assert units(ActorCritic(VECTOR, DISCRETE, hidden=(8,)).encoder) == {torch.nn.ReLU}


def test_orthogonal_init_makes_the_torso_orthogonal_and_leaves_the_heads_alone() -> None:
    """SB3's ortho_init: torso layers orthogonal with gain sqrt(2), zero biases; the
    heads are drawn first, so they are the same as without it."""
    space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    nets = {}
    for orthogonal in (False, True):
        torch.manual_seed(3)
        nets[orthogonal] = ActorCritic(
            space, gym.spaces.Discrete(2), hidden=(64, 32), shared_torso=False,
            orthogonal_init=orthogonal,
        )  # fmt: skip
    torch.testing.assert_close(
        nets[True].policy_head.state_dict(), nets[False].policy_head.state_dict()
    )
    torch.testing.assert_close(
        nets[True].value_head.state_dict(), nets[False].value_head.state_dict()
    )
    for encoder in (nets[True].encoder, nets[True].value_encoder):
        assert encoder is not None
        layers = [layer for layer in encoder.modules() if isinstance(layer, torch.nn.Linear)]
        assert len(layers) == 2
        for layer in layers:
            weight = layer.weight.detach()
            rows, columns = weight.shape
            # orthogonal with gain g: the smaller side's Gram matrix is g^2 I
            gram = weight @ weight.T if rows <= columns else weight.T @ weight
            torch.testing.assert_close(gram, 2.0 * torch.eye(min(rows, columns)))
            assert not layer.bias.detach().any()
    default = next(m for m in nets[False].encoder.modules() if isinstance(m, torch.nn.Linear))
    assert default.bias.detach().any()  # PyTorch's default: uniform biases
