"""Actor-critic networks for the policy-gradient agents (RPG, TRPO, A3C).

    policy = ActorCritic(observation_space, action_space, hidden=(64, 64), lstm_size=128)
    state = policy.initial_state(num_envs)
    distribution, values, state = policy.step(observations, state, episode_starts)
    distribution, values, _ = policy(observations_TB, rollout_state, episode_starts_TB)

Architecture: an encoder from `rlkit.encoders.build_encoder` (for every observation
space: the Nature CNN of Mnih et al. 2015 for uint8 frames (C, H, W), an MLP for vectors,
a small CNN for grids, one-hot parts, one encoder per part of a Dict or Tuple) -> an
optional LSTM core (Hochreiter & Schmidhuber 1997; as the memory of recurrent policy
gradients, Wierstra et al. 2009, and of A3C-LSTM, Mnih et al. 2016) -> a policy head
(categorical for Discrete actions, one categorical per dimension for MultiDiscrete,
Bernoullis for MultiBinary, a diagonal Gaussian with a state-independent learned log-std
for 1-D Box actions, the convention of Schulman et al. 2015 and 2017) and a linear value
head.
With `shared_torso=False` the value function has its own encoder and LSTM, so its
parameters are disjoint from the policy's (TRPO fits the value function separately).

Recurrent state (`RecurrentState`) is a plain tuple of tensors, each [B, lstm_size]
with the batch (env) axis first, so `tuple(part[indices] for part in state)` picks
envs and `concatenate_states` joins them: (h, c) for a shared torso, (h, c, value_h,
value_c) when the value function has its own LSTM. It is passed in and out
explicitly; the module keeps none. `episode_starts[t, b]` True resets env b's state
to zeros *before* step t, so one stored sequence may hold several episodes
(truncated backpropagation through time over stored sequences).

Initialisation: the torso keeps PyTorch's defaults, or with `orthogonal_init` its linear
and convolution layers are orthogonal with gain sqrt(2) and zero biases (SB3's
`ortho_init`, which the SB3 and sb3-contrib policies rlkit is compared with use). The
policy output layer is
orthogonal with gain 0.01, so the initial policy is near uniform / near zero-mean
(Andrychowicz et al. 2021, "What matters in on-policy RL": a 100x smaller last policy
layer); the
value head is orthogonal with gain 1; LSTM forget-gate biases start at 1 (Gers et al.
2000; Jozefowicz et al. 2015), which helps carry memory from the first updates.

Flat-parameter helpers (`flat_parameters`, `set_flat_parameters`, `flat_gradient`,
`set_flat_gradients`) serve TRPO's conjugate gradient and line search (Schulman et al.
2015, appendix C) and carry A3C's weights and gradients between learner and workers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    Independent,
    Normal,
    kl_divergence,
    register_kl,
)

from rlkit.encoders import EncoderSettings, build_encoder
from rlkit.errors import UserError
from rlkit.networks import Activation, ObservationNormalizer
from rlkit.observations import leading_shape, map_leaves, observation_tensors, reshape_leading

RecurrentState = tuple[torch.Tensor, ...]
"""LSTM state: (h, c) or (h, c, value_h, value_c), each [B, lstm_size], batch first."""

POLICY_OUTPUT_GAIN = 0.01  # Andrychowicz et al. 2021: 100x smaller last policy layer
VALUE_OUTPUT_GAIN = 1.0
TORSO_GAIN = math.sqrt(2)  # orthogonal_init: SB3's gain for its feature and MLP layers
FORGET_GATE_BIAS = 1.0  # Gers et al. 2000; Jozefowicz et al. 2015


class CategoricalHead(nn.Module):
    """Linear layer to logits -> `Categorical` over Discrete actions (any leading dims)."""

    def __init__(self, features: int, num_actions: int) -> None:
        super().__init__()
        self.logits = nn.Linear(features, num_actions)
        nn.init.orthogonal_(self.logits.weight, gain=POLICY_OUTPUT_GAIN)
        nn.init.zeros_(self.logits.bias)

    def forward(self, features: torch.Tensor) -> Categorical:
        # no argument checks: logits from a linear layer are valid, and the checks cost
        # about a fifth of an acting step
        return Categorical(logits=self.logits(features), validate_args=False)


class GaussianHead(nn.Module):
    """Diagonal Gaussian: linear mean, state-independent learned log-std per action dim.

    The log-std is a parameter, not a network output (Schulman et al. 2015, 2017);
    `log_std_init` 0.0 gives a standard deviation of 1 at the start.
    """

    def __init__(self, features: int, action_dim: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.mean = nn.Linear(features, action_dim)
        nn.init.orthogonal_(self.mean.weight, gain=POLICY_OUTPUT_GAIN)
        nn.init.zeros_(self.mean.bias)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def forward(self, features: torch.Tensor) -> Independent[Normal]:
        mean = self.mean(features)
        std = self.log_std.exp().expand_as(mean)
        return Independent(Normal(mean, std, validate_args=False), 1, validate_args=False)


class MultiCategorical(Distribution):
    """Independent categoricals, one per action dimension (MultiDiscrete actions).

    Samples are int64 [..., D] (index 0..n_i - 1 in dimension i; the env's `start` is
    added by `rlkit.rollout._env_actions`); log-prob and entropy are summed over the D
    dimensions, as is the KL divergence (registered for `kl_divergence`). `mode` is the
    argmax of each dimension.
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}

    def __init__(self, logits: torch.Tensor, sizes: Sequence[int]) -> None:
        self.sizes = [int(size) for size in sizes]
        self.logits = logits
        self.categoricals = [
            Categorical(logits=part, validate_args=False)
            for part in torch.split(logits, self.sizes, dim=-1)
        ]
        super().__init__(
            batch_shape=logits.shape[:-1],
            event_shape=torch.Size([len(self.sizes)]),
            validate_args=False,
        )

    def sample(self, sample_shape: torch.Size | Sequence[int] = ()) -> torch.Tensor:
        shape = torch.Size(sample_shape)
        with torch.no_grad():
            samples = [part.sample(shape) for part in self.categoricals]  # type: ignore[no-untyped-call]
            return torch.stack(samples, dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        columns = value.long().unbind(dim=-1)
        pairs = zip(self.categoricals, columns, strict=True)
        log_probs = [part.log_prob(column) for part, column in pairs]  # type: ignore[no-untyped-call]
        return torch.stack(log_probs, dim=-1).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        entropies = [part.entropy() for part in self.categoricals]  # type: ignore[no-untyped-call]
        return torch.stack(entropies, dim=-1).sum(dim=-1)

    @property
    def mode(self) -> torch.Tensor:
        return torch.stack([part.logits.argmax(dim=-1) for part in self.categoricals], dim=-1)


def _kl_multi_categorical(p: MultiCategorical, q: MultiCategorical) -> torch.Tensor:
    """KL(p || q) of independent dimensions: the sum of the dimensions' KLs."""
    parts = zip(p.categoricals, q.categoricals, strict=True)
    return torch.stack([kl_divergence(a, b) for a, b in parts], dim=-1).sum(dim=-1)


register_kl(MultiCategorical, MultiCategorical)(_kl_multi_categorical)  # type: ignore[no-untyped-call]


class MultiCategoricalHead(nn.Module):
    """Linear layer to the logits of every dimension -> `MultiCategorical` (MultiDiscrete).

    One linear layer for all dimensions (orthogonal, gain 0.01 as `CategoricalHead`),
    split into `nvec` (flattened) groups.
    """

    def __init__(self, features: int, sizes: Sequence[int]) -> None:
        super().__init__()
        self.sizes = [int(size) for size in sizes]
        self.logits = nn.Linear(features, sum(self.sizes))
        nn.init.orthogonal_(self.logits.weight, gain=POLICY_OUTPUT_GAIN)
        nn.init.zeros_(self.logits.bias)

    def forward(self, features: torch.Tensor) -> MultiCategorical:
        return MultiCategorical(self.logits(features), self.sizes)


class BernoulliHead(nn.Module):
    """Linear layer to logits -> independent Bernoullis (MultiBinary actions).

    Samples are float 0./1. [..., n] (n = the flattened MultiBinary shape); log-prob and
    entropy are summed over the n dimensions (`Independent`); the greedy action is
    1 where p > 0.5 (logit > 0).
    """

    def __init__(self, features: int, count: int) -> None:
        super().__init__()
        self.logits = nn.Linear(features, count)
        nn.init.orthogonal_(self.logits.weight, gain=POLICY_OUTPUT_GAIN)
        nn.init.zeros_(self.logits.bias)

    def forward(self, features: torch.Tensor) -> Independent[Bernoulli]:
        bernoulli = Bernoulli(logits=self.logits(features), validate_args=False)
        return Independent(bernoulli, 1, validate_args=False)


def policy_head(features: int, action_space: gym.Space[Any]) -> nn.Module:
    """CategoricalHead for Discrete actions, GaussianHead for a 1-D Box,
    MultiCategoricalHead for MultiDiscrete, BernoulliHead for MultiBinary; UserError otherwise."""
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalHead(features, int(action_space.n))
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianHead(features, int(action_space.shape[0]))
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return MultiCategoricalHead(features, action_space.nvec.flatten().tolist())
    if isinstance(action_space, gym.spaces.MultiBinary):
        return BernoulliHead(features, int(np.prod(action_space.shape)))
    raise UserError(
        f"no policy head for action space {action_space}; need Discrete, MultiDiscrete, "
        "MultiBinary or a 1-D Box"
    )


def _forget_bias(lstm: nn.LSTM, value: float) -> nn.LSTM:
    """Forget-gate biases to `value` (PyTorch gate order: input, forget, cell, output)."""
    size = lstm.hidden_size
    bias_input = lstm.get_parameter("bias_ih_l0")
    bias_hidden = lstm.get_parameter("bias_hh_l0")
    with torch.no_grad():
        bias_input[size : 2 * size].fill_(value)
        bias_hidden[size : 2 * size].zero_()
    return lstm


def run_lstm(
    lstm: nn.LSTM,
    inputs: torch.Tensor,
    hidden: torch.Tensor,
    cell: torch.Tensor,
    episode_starts: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """LSTM over inputs [T, B, F] from (hidden, cell) [B, H]; resets envs where a step starts.

    State rows of env b are zeroed before step t when `episode_starts[t, b]`. The sequence
    is cut only at steps where some env starts, and each piece runs as one `nn.LSTM`
    call. Returns outputs [T, B, H] and the final (hidden, cell).
    """
    steps = inputs.shape[0]
    starts = episode_starts.to(torch.bool)
    cuts = torch.nonzero(starts.any(dim=1)).flatten().tolist()
    bounds = sorted({0, *cuts, steps})
    outputs = []
    for begin, end in itertools.pairwise(bounds):
        keep = (~starts[begin]).to(hidden.dtype).unsqueeze(1)
        hidden, cell = hidden * keep, cell * keep
        piece, (hidden_out, cell_out) = lstm(
            inputs[begin:end], (hidden.unsqueeze(0), cell.unsqueeze(0))
        )
        hidden, cell = hidden_out[0], cell_out[0]
        outputs.append(piece)
    return torch.cat(outputs, dim=0), hidden, cell


def _orthogonal_torso(*encoders: nn.Module | None) -> None:
    """Orthogonal weights (gain `TORSO_GAIN`) and zero biases for the encoders' linear
    and convolution layers; run after the heads so their draws are unchanged."""
    for encoder in encoders:
        if encoder is None:
            continue
        for layer in encoder.modules():
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                nn.init.orthogonal_(layer.weight, gain=TORSO_GAIN)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module):
    """Encoder -> optional LSTM -> policy head and value head (see the module docstring).

    `hidden`: MLP widths for vector observations (64x64: the MuJoCo network of Schulman
    et al. 2017, PPO) and `activation` their units (ReLU by default; the papers' tanh
    with "tanh").
    `lstm_size`: None for a memoryless policy, else the LSTM width, its forget-gate
    biases at `forget_bias`. `shared_torso`: False gives the value function its own
    encoder (and LSTM). `orthogonal_init`: the encoders' linear and convolution layers
    orthogonal (gain sqrt(2), zero bias). `normalize_observations`: vector observations
    pass through one `ObservationNormalizer` (shared by both encoders) first;
    `update_normalizer` feeds it.
    """

    def __init__(
        self,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        *,
        hidden: Sequence[int] = (64, 64),
        lstm_size: int | None = None,
        shared_torso: bool = True,
        activation: Activation = "relu",
        forget_bias: float = FORGET_GATE_BIAS,
        normalize_observations: bool = False,
        encoder: EncoderSettings | None = None,
        orthogonal_init: bool = False,
    ) -> None:
        super().__init__()
        if lstm_size is not None and lstm_size <= 0:
            raise UserError(f"lstm_size {lstm_size} must be a positive integer or None")
        self.recurrent = lstm_size is not None
        self.shared_torso = shared_torso
        self.lstm_size = lstm_size
        self.observation_space = observation_space
        self.encoder: nn.Module = build_encoder(
            observation_space, hidden, activation, settings=encoder
        )
        encoded = int(self.encoder.output_dim)  # type: ignore[arg-type]
        lstm = _forget_bias(nn.LSTM(encoded, lstm_size), forget_bias) if lstm_size else None
        self.lstm = lstm
        features = lstm_size if lstm_size else encoded
        self.policy_head = policy_head(features, action_space)
        self.value_encoder: nn.Module | None = None
        self.value_lstm: nn.LSTM | None = None
        if not shared_torso:
            self.value_encoder = build_encoder(
                observation_space, hidden, activation, settings=encoder
            )
            if lstm_size:
                self.value_lstm = _forget_bias(nn.LSTM(encoded, lstm_size), forget_bias)
        self.value_head = nn.Linear(features, 1)
        nn.init.orthogonal_(self.value_head.weight, gain=VALUE_OUTPUT_GAIN)
        nn.init.zeros_(self.value_head.bias)
        if orthogonal_init:
            _orthogonal_torso(self.encoder, self.value_encoder)
        shape = observation_space.shape
        if normalize_observations and shape is not None and len(shape) == 1:
            normalizer = ObservationNormalizer(int(shape[0]))
            # a module in front of each encoder: checkpoint keys encoder.0.mean, ...
            self.encoder = nn.Sequential(normalizer, self.encoder)
            if self.value_encoder is not None:
                self.value_encoder = nn.Sequential(normalizer, self.value_encoder)

    @property
    def normalizer(self) -> ObservationNormalizer | None:
        """The observation normaliser in front of the encoders, if there is one."""
        first = self.encoder[0] if isinstance(self.encoder, nn.Sequential) else None
        return first if isinstance(first, ObservationNormalizer) else None

    def update_normalizer(self, observations: torch.Tensor) -> None:
        """Merge `observations` [B, obs] into the observation statistics (if normalizing)."""
        if self.normalizer is not None:
            self.normalizer.update(observations)

    def policy_parameters(self) -> list[nn.Parameter]:
        """Encoder, LSTM and policy head (the shared torso counts as the policy's)."""
        modules: list[nn.Module | None] = [self.encoder, self.lstm, self.policy_head]
        return [param for module in modules if module is not None for param in module.parameters()]

    def value_parameters(self) -> list[nn.Parameter]:
        """The value head, plus the value encoder and LSTM when the torso is not shared."""
        modules: list[nn.Module | None] = [self.value_encoder, self.value_lstm, self.value_head]
        return [param for module in modules if module is not None for param in module.parameters()]

    def initial_state(self, batch_size: int) -> RecurrentState | None:
        """Zero LSTM state for `batch_size` envs (None for a memoryless policy)."""
        if self.lstm_size is None:
            return None
        device = self.value_head.weight.device
        parts = 2 if self.shared_torso else 4
        return tuple(torch.zeros(batch_size, self.lstm_size, device=device) for _ in range(parts))

    def _encode(
        self,
        encoder: nn.Module,
        lstm: nn.LSTM | None,
        observations: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None,
        episode_starts: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        steps, batch = leading_shape(observations, 2)
        encoded = encoder(reshape_leading(observations, 2, (steps * batch,)))
        encoded = encoded.reshape(steps, batch, -1)
        if lstm is None:
            return encoded, None
        assert state is not None
        outputs, hidden, cell = run_lstm(lstm, encoded, state[0], state[1], episode_starts)
        return outputs, (hidden, cell)

    def features(
        self,
        observations: torch.Tensor,
        state: RecurrentState | None,
        episode_starts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, RecurrentState | None]:
        """Policy and value features [T, B, F] for observations [T, B, *obs], and new state."""
        if self.recurrent and state is None:
            state = self.initial_state(leading_shape(observations, 2)[1])
        encoder, value_encoder = self.encoder, self.value_encoder
        normalizer = self.normalizer
        if normalizer is not None:  # shared by both encoders: normalise once
            observations = normalizer(observations)
            encoder = _after_normalizer(self.encoder)
            value_encoder = None if value_encoder is None else _after_normalizer(value_encoder)
        policy_state = None if state is None else (state[0], state[1])
        policy_features, policy_new = self._encode(
            encoder, self.lstm, observations, policy_state, episode_starts
        )
        if value_encoder is None:
            return policy_features, policy_features, policy_new
        value_state = None if state is None else (state[2], state[3])
        value_features, value_new = self._encode(
            value_encoder, self.value_lstm, observations, value_state, episode_starts
        )
        if policy_new is None or value_new is None:
            return policy_features, value_features, None
        return policy_features, value_features, (*policy_new, *value_new)

    def forward(
        self,
        observations: torch.Tensor,
        state: RecurrentState | None,
        episode_starts: torch.Tensor,
    ) -> tuple[Distribution, torch.Tensor, RecurrentState | None]:
        """Observations [T, B, *obs] -> (distribution [T, B], values [T, B], new state).

        State None on a recurrent net means zeros. Memoryless nets ignore state and
        `episode_starts` and return None as the state.
        """
        policy_features, value_features, new_state = self.features(
            observations, state, episode_starts
        )
        distribution = self.policy_head(policy_features)
        values = self.value_head(value_features).squeeze(-1)
        return distribution, values, new_state

    def step(
        self,
        observation: torch.Tensor,
        state: RecurrentState | None,
        episode_start: torch.Tensor,
    ) -> tuple[Distribution, torch.Tensor, RecurrentState | None]:
        """One step for acting: observation [B, *obs] -> (distribution [B], values [B], state)."""
        policy_features, value_features, new_state = self.features(
            _add_time(observation), state, episode_start.unsqueeze(0)
        )
        distribution = self.policy_head(policy_features[0])
        values = self.value_head(value_features[0]).squeeze(-1)
        return distribution, values, new_state

    def act(
        self,
        observation: torch.Tensor,
        state: RecurrentState | None,
        episode_start: torch.Tensor,
    ) -> tuple[Distribution, RecurrentState | None]:
        """`step` without the value: (distribution [B], new state), for learners that
        recompute values. The value encoder and head are skipped unless the value
        function has its own LSTM, whose state must advance too. State None on a
        recurrent net means zeros."""
        if self.recurrent and state is None:
            state = self.initial_state(leading_shape(observation, 1)[0])
        if self.value_lstm is not None:
            distribution, _, new_state = self.step(observation, state, episode_start)
            return distribution, new_state
        policy_state = None if state is None else (state[0], state[1])
        features, new_policy_state = self._encode(
            self.encoder, self.lstm, _add_time(observation), policy_state,
            episode_start.unsqueeze(0),
        )  # fmt: skip
        return self.policy_head(features[0]), new_policy_state


def _after_normalizer(encoder: nn.Module) -> nn.Module:
    """The encoder behind the observation normaliser of `Sequential(normalizer, encoder)`."""
    assert isinstance(encoder, nn.Sequential)
    return encoder[1]


def _add_time(observations: Any) -> Any:
    """A leading axis of size 1 on every part: one step [B, ...] -> [1, B, ...]."""
    return map_leaves(lambda leaf: leaf.unsqueeze(0), observations)


def concatenate_states(states: Sequence[RecurrentState | None]) -> RecurrentState | None:
    """Join recurrent states along the batch (env) axis; None when they are all None."""
    if all(state is None for state in states):
        return None
    if any(state is None for state in states):
        raise ValueError("cannot concatenate recurrent and memoryless states")
    present = [state for state in states if state is not None]
    return tuple(torch.cat(parts, dim=0) for parts in zip(*present, strict=True))


def network_state(policy: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A network's weights and its optimiser's state, as agents' checkpoints hold them."""
    return {"policy": policy.state_dict(), "optimizer": optimizer.state_dict()}


def load_network_state(
    policy: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Restore what `network_state` saved."""
    policy.load_state_dict(state["policy"])
    optimizer.load_state_dict(state["optimizer"])


def load_statistics(policy: ActorCritic, statistics: tuple[np.ndarray, np.ndarray, float]) -> None:
    """Set the policy's observation normaliser to (mean, variance, count)."""
    normalizer = policy.normalizer
    assert normalizer is not None
    mean, var, count = statistics
    with torch.no_grad():
        normalizer.get_buffer("mean").copy_(torch.tensor(mean))
        normalizer.get_buffer("var").copy_(torch.tensor(var))
        normalizer.get_buffer("count").fill_(float(count))


def normalizer_statistics(policy: ActorCritic) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(mean, variance, count) of the policy's observation normaliser, None without one."""
    normalizer = policy.normalizer
    if normalizer is None:
        return None
    return (
        normalizer.get_buffer("mean").numpy().copy(),
        normalizer.get_buffer("var").numpy().copy(),
        float(normalizer.get_buffer("count")),
    )


def flat_parameters(params: Iterable[nn.Parameter]) -> torch.Tensor:
    """All parameters as one detached 1-D tensor (in the order given)."""
    return torch.cat([param.detach().reshape(-1) for param in params])


def _split_flat(
    params: Sequence[nn.Parameter], flat: torch.Tensor
) -> Iterator[tuple[nn.Parameter, torch.Tensor]]:
    """Each parameter with its slice of the 1-D `flat`, viewed in the parameter's shape."""
    total = sum(param.numel() for param in params)
    if flat.numel() != total:
        raise ValueError(f"flat vector has {flat.numel()} values; the parameters hold {total}")
    offset = 0
    for param in params:
        count = param.numel()
        yield param, flat[offset : offset + count].view_as(param)
        offset += count


def set_flat_parameters(params: Sequence[nn.Parameter], flat: torch.Tensor) -> None:
    """Copy the 1-D `flat` into `params` (inverse of `flat_parameters`), without autograd."""
    with torch.no_grad():
        for param, values in _split_flat(params, flat):
            param.copy_(values)


def set_flat_gradients(params: Sequence[nn.Parameter], flat: torch.Tensor) -> None:
    """Set each parameter's `.grad` to its slice of the 1-D `flat` (inverse of
    `flat_gradient`; the gradients are views of `flat`, not copies)."""
    for param, gradient in _split_flat(params, flat):
        param.grad = gradient


def flat_gradient(
    loss: torch.Tensor,
    params: Sequence[nn.Parameter],
    *,
    create_graph: bool = False,
    retain_graph: bool = False,
) -> torch.Tensor:
    """d loss / d params as one 1-D tensor; zeros for parameters the loss does not use.

    `create_graph=True` keeps the graph of the gradient itself (for Hessian- or
    Fisher-vector products); it implies `retain_graph`.
    """
    gradients = torch.autograd.grad(
        loss,
        list(params),
        create_graph=create_graph,
        retain_graph=retain_graph or create_graph,
        allow_unused=True,
    )
    return torch.cat(
        [
            (torch.zeros_like(param) if grad is None else grad).reshape(-1)
            for grad, param in zip(gradients, params, strict=True)
        ]
    )


def observation_tensor(observation: Any) -> torch.Tensor:
    """An env observation as a tensor: float64 becomes float32, uint8 frames stay uint8."""
    array = np.asarray(observation)
    if array.dtype == np.float64:
        array = array.astype(np.float32)
    return torch.from_numpy(array)


def act_greedily(
    policy: ActorCritic,
    action_space: gym.Space[Any],
    observation: Any,
    state: RecurrentState | None,
) -> tuple[Any, RecurrentState | None]:
    """An agent's evaluation step: the greedy action for one observation, carrying the
    recurrent state (rlkit's one convention: an episode starts from
    `policy.initial_state(1)`, zeros for an LSTM and None for a memoryless policy)."""
    tensor = _add_time(observation_tensors(observation, policy.observation_space))
    with torch.inference_mode():
        distribution, state = policy.act(tensor, state, torch.zeros(1, dtype=torch.bool))
    return greedy_action(distribution, action_space), state


class GreedyActing:
    """`act` and `initial_state` of an agent whose evaluation policy is its network's
    greedy action (trpo, rpg, a3c, nes): the argmax, or the Gaussian's mean clipped to
    the bounds, carrying the LSTM state; an episode starts from the zero state."""

    policy: ActorCritic
    action_space: gym.Space[Any]

    def act(self, observation: Any, state: RecurrentState | None) -> tuple[Any, Any]:
        return act_greedily(self.policy, self.action_space, observation, state)

    def initial_state(self) -> RecurrentState | None:
        return self.policy.initial_state(1)


class GreedyPolicy(GreedyActing):
    """A network's greedy policy as an actor, for `rlkit.evaluation.play_episode` where
    there is no agent (NES's population members)."""

    def __init__(self, policy: ActorCritic, action_space: gym.Space[Any]) -> None:
        self.policy = policy
        self.action_space = action_space


def greedy_action(distribution: Distribution, action_space: gym.Space[Any]) -> Any:
    """The evaluation action of a one-element batch: the most probable (Discrete, plus its
    `start`), the most probable per dimension (MultiDiscrete, plus `start`), 1 where
    p > 0.5 (MultiBinary), or the Gaussian's mean clipped to the bounds (Box)."""
    if isinstance(action_space, gym.spaces.Discrete):
        best = int(distribution.probs.argmax(dim=-1)[0])  # type: ignore[attr-defined]
        return best + int(action_space.start)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        assert isinstance(distribution, MultiCategorical)
        indices = distribution.mode[0].cpu().numpy().reshape(action_space.nvec.shape)
        return (indices + action_space.start).astype(action_space.dtype)
    if isinstance(action_space, gym.spaces.MultiBinary):
        assert isinstance(distribution, Independent)
        ones = distribution.base_dist.logits[0] > 0
        return ones.cpu().numpy().reshape(action_space.shape).astype(action_space.dtype)
    assert isinstance(action_space, gym.spaces.Box)
    mean = distribution.mean[0].numpy()
    return np.clip(mean, action_space.low, action_space.high).astype(action_space.dtype)
