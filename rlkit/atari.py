"""Atari (ALE) environments: one settings model, a single-env path and a vector path.

    settings = AtariSettings()                       # every value decided here, printed at start
    env = make_atari_env("ALE/Breakout-v5", settings, seed=3)
    vector_env = make_atari_vector_env("ALE/Breakout-v5", settings, num_envs=8, seed=3)

The vector path is ale-py's native `AtariVectorEnv` (C++ threads, preprocessing built in;
source: ale-py 0.12 `src/ale/vector/preprocessed_env.cpp`). The single-env path is a
gymnasium `AtariEnv` with `AtariFrames`, a wrapper that repeats that preprocessing step
for step, so the two paths give the same observations, rewards and episode ends for the
same settings and seeds: env `i` of `make_atari_vector_env(seed=s)` is
`make_atari_env(seed=s + i)`, frame for frame, sticky actions and no-op starts included
(tests/test_atari.py checks it). gymnasium's own `AtariPreprocessing` differs from the
vector env (no-op count 1..noop_max from the env's numpy RNG, no FIRE reset, ALE seeded
through a SeedSequence, max-pooling whenever frame_skip > 1, truncation counted by ALE
from `reset_game`, no-ops included), so rlkit does not use it; and gymnasium's
`FrameStackObservation` pads with the first frame unless given `padding_type="zero"`.

What the settings mean, as both paths implement them:

- reset: ALE `reset_game`, then FIRE once if `fire_reset` and the action set has FIRE,
  then no-op frames so that FIRE + no-ops = n frames, n uniform in 0..noop_max-1
  (drawn from a std::mt19937 seeded with the env seed, as the vector env does).
- step: the action repeated for `frame_skip` frames; the observation is the max of the
  last two frames (`max_pool`) or the last frame, grayscale (ALE's palette), resized to
  `screen_size` x `screen_size` with OpenCV INTER_AREA. A step stops early at game over,
  at a life loss when `episodic_life`, or at `max_episode_frames`; its observation then
  holds the frames captured before that frame (the vector env's rule).
- `episodic_life` in these factories: a life loss ends the episode, and the next reset
  restarts the game (ale-py semantics), so an agent would only ever play first lives.
  rlkit's env factory (`rlkit.environments`) therefore passes it off, and learners
  apply Mnih et al.'s version (`rlkit.signals.LifeLossTerminals`): a lost life is terminal for
  the update target, while the game goes on.
- truncation: after `max_episode_frames` frames since the reset's no-ops.
- the frame stack starts as zeros, the first frame last.

Importing this module imports neither ale-py nor OpenCV; the factories do.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from rlkit.config import StrictModel
from rlkit.errors import UserError, shorten

if TYPE_CHECKING:
    from ale_py.vector_env import AtariVectorEnv

Frame = NDArray[np.uint8]

# Pixel-observation ALE ids (`ALE/Breakout-v5`); `-ram` ids and older versions excluded.
_ATARI_ID = re.compile(r"^ALE/(?P<name>[A-Za-z0-9]+)-v5$")
# ALE seeds are C ints: the vector env reads a negative seed as "unseeded".
_MAX_SEED = 2**31 - 1


class AtariSettings(StrictModel):
    """Every Atari setting that changes results; rlkit passes each one to the backend.

    Defaults follow the ALE v5 protocol of Machado et al. 2018 (sticky actions, no
    episodic life) with the Nature DQN preprocessing of Mnih et al. 2015 (no-op starts,
    frame skip 4, max-pool, 84x84 grayscale, stack of 4, reward clipping for learning).
    The backends' own defaults differ (ale-py's vector env: no sticky actions, fire reset
    on), so nothing is left to them.
    """

    sticky_action_prob: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="probability that the emulator repeats the previous action on each frame "
        "(Machado et al. 2018 protocol; ALE v5 default)",
    )
    episodic_life: bool = Field(
        default=False,
        description="a lost life is terminal for learning while the game goes on "
        "(Mnih et al. 2015: on; Machado et al. 2018: off)",
    )
    fire_reset: bool = Field(
        default=False,
        description="press FIRE once at each reset, in games whose action set has FIRE "
        "(Machado et al. 2018: off; OpenAI Baselines' FireResetEnv)",
    )
    reward_clipping: bool = Field(
        default=True,
        description="clip rewards to {-1, 0, 1} for learning; evaluation reports unclipped "
        "returns (Mnih et al. 2015)",
    )
    frame_skip: int = Field(
        default=4, ge=1, description="emulator frames per agent step (Mnih et al. 2015)"
    )
    max_pool: bool = Field(
        default=True,
        description="observe the max of the last two frames of a step, not the last frame "
        "(Mnih et al. 2015, against sprite flicker)",
    )
    noop_max: int = Field(
        default=30,
        ge=0,
        description="reset starts with n no-op frames, n uniform in 0..noop_max-1 "
        "(ale-py vector env rule; Mnih et al. 2015 used up to 30)",
    )
    frame_stack: int = Field(
        default=4, ge=1, description="frames stacked per observation (Mnih et al. 2015)"
    )
    full_action_space: bool = Field(
        default=False,
        description="all 18 joystick actions instead of the game's minimal set "
        "(ALE v5 default: minimal)",
    )
    screen_size: int = Field(
        default=84,
        ge=1,
        description="observation height and width in pixels, grayscale (Mnih et al. 2015)",
    )
    max_episode_frames: int = Field(
        default=108_000,
        ge=1,
        description="emulator frames after which an episode is truncated, 30 minutes at 60 Hz "
        "(ALE v5 default, Machado et al. 2018)",
    )

    def describe(self) -> str:
        """One line with every setting, `name=value`, in declaration order."""
        return ", ".join(f"{name}={value}" for name, value in self.model_dump().items())


def is_atari(env_id: str) -> bool:
    """True for ALE v5 pixel ids (`ALE/Breakout-v5`)."""
    return _ATARI_ID.match(env_id) is not None


def register_ale() -> bool:
    """Put ale-py's games into Gymnasium's registry; False when ale-py is not installed."""
    try:
        import ale_py
    except ImportError:
        return False
    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stderr
    gym.register_envs(ale_py)
    return True


def atari_short_names() -> dict[str, str]:
    """Every game ale-py ships, short name -> v5 id (`Breakout` -> `ALE/Breakout-v5`)."""
    register_ale()
    names = {}
    for env_id in gym.registry:
        match = _ATARI_ID.match(env_id)
        if match is not None:
            names[match["name"]] = env_id
    return dict(sorted(names.items()))


def _check(env_id: str, seeds: range) -> None:
    if not is_atari(env_id):
        raise UserError(f"'{shorten(env_id)}' is not an ALE v5 id; give one like ALE/Breakout-v5")
    register_ale()
    if env_id not in gym.registry:
        raise UserError(f"unknown Atari game '{shorten(env_id)}'; see `rlkit list envs`")
    if seeds.start < 0 or seeds.stop - 1 > _MAX_SEED:
        raise UserError(
            f"Atari seeds {seeds.start}..{seeds.stop - 1} out of range; ALE takes 0..{_MAX_SEED}"
        )


class _NoopStream:
    """The vector env's no-op count generator: std::mt19937 seeded with the env seed, drawn
    through libstdc++'s std::uniform_int_distribution (Lemire 2019, "Fast random integer
    generation in an interval"), reproduced on numpy's MT19937 bit generator.

    `generator` is the env's `np_random`, so rlkit's env RNG state covers it.
    """

    def __init__(self) -> None:
        self.generator = np.random.Generator(np.random.MT19937(0))

    def seed(self, seed: int) -> None:
        """std::mt19937::seed(seed): Matsumoto and Nishimura's initialisation of the state."""
        key = [seed & 0xFFFFFFFF]
        for index in range(1, 624):
            previous = key[-1]
            key.append((1812433253 * (previous ^ (previous >> 30)) + index) & 0xFFFFFFFF)
        state = {"key": np.array(key, dtype=np.uint32), "pos": 624}
        self.generator.bit_generator.state = {"bit_generator": "MT19937", "state": state}

    def below(self, bound: int) -> int:
        """An integer uniform in 0..bound-1, as std::uniform_int_distribution(0, bound - 1)."""
        bit_generator = self.generator.bit_generator
        product = int(bit_generator.random_raw()) * bound
        low = product & 0xFFFFFFFF
        if low < bound:
            threshold = (1 << 32) % bound
            while low < threshold:
                product = int(bit_generator.random_raw()) * bound
                low = product & 0xFFFFFFFF
        return product >> 32


class AtariFrames(gym.Wrapper[Frame, int, Frame, int]):
    """ale-py's vector-env preprocessing for one gymnasium `AtariEnv` made with frameskip=1.

    Reset (no-op and fire starts, ALE seeding), frame skip, max-pool, grayscale, resize,
    episodic life, truncation and reward sum follow `PreprocessedEnv` of ale-py 0.12
    (`src/ale/vector/preprocessed_env.cpp`) step for step; observations are one
    (screen_size, screen_size) uint8 frame, stacked by `FrameStackObservation` afterwards.
    `reset(seed=s)` seeds the emulator with `s` itself, as the vector env does.
    """

    def __init__(self, env: gym.Env[Frame, int], settings: AtariSettings) -> None:
        super().__init__(env)
        atari_env: Any = env.unwrapped
        self._ale = atari_env.ale
        self._load_game = atari_env.load_game
        meanings: list[str] = atari_env.get_action_meanings()
        self._noop_action = meanings.index("NOOP")
        self._fire_action = (
            meanings.index("FIRE") if settings.fire_reset and "FIRE" in meanings else None
        )
        self._settings = settings
        self._noops = _NoopStream()
        self.np_random = self._noops.generator
        height, width = self._ale.getScreenDims()
        self._raw_frames = np.zeros((2, height, width), dtype=np.uint8)
        self._elapsed_frames = 0
        self._lives = 0
        size = settings.screen_size
        self.observation_space = gym.spaces.Box(0, 255, (size, size), dtype=np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Frame, dict[str, Any]]:
        if seed is not None:
            if not 0 <= seed <= _MAX_SEED:
                raise ValueError(f"seed {seed} out of range; ALE takes 0..{_MAX_SEED}")
            self._ale.setInt("random_seed", seed)
            self._load_game()
            self._noops.seed(seed)
        frame, info = self.env.reset(options=options)
        fire = self._fire_action is not None
        if self._fire_action is not None:
            frame, _, _, _, info = self.env.step(self._fire_action)
        noop_frames = self._noops.below(max(self._settings.noop_max, 1)) - int(fire)
        for _ in range(noop_frames):
            frame, _, game_over, _, info = self.env.step(self._noop_action)
            if game_over:
                frame, info = self.env.reset()
        self._raw_frames[0] = frame
        self._raw_frames[1] = 0
        self._elapsed_frames = 0
        self._lives = int(info["lives"])
        return self._observation(), info

    def step(self, action: int) -> tuple[Frame, SupportsFloat, bool, bool, dict[str, Any]]:
        settings = self._settings
        reward = 0.0
        game_over = life_lost = False
        info: dict[str, Any] = {}
        for frames_left in range(settings.frame_skip, 0, -1):
            frame, frame_reward, game_over, _, info = self.env.step(action)
            reward += float(frame_reward)
            self._elapsed_frames += 1
            lives = int(info["lives"])
            life_lost = 0 < lives < self._lives
            if (
                game_over
                or self._elapsed_frames >= settings.max_episode_frames
                or (settings.episodic_life and life_lost)
            ):
                break
            if frames_left <= 2:
                self._raw_frames[frames_left - 1] = frame
        observation = self._observation()
        self._lives = int(info["lives"])
        terminated = game_over or (settings.episodic_life and life_lost)
        truncated = self._elapsed_frames >= settings.max_episode_frames and not terminated
        return observation, reward, terminated, truncated, info

    def _observation(self) -> Frame:
        """The last frame, or its max with the one before, resized (INTER_AREA, as ale-py)."""
        import cv2

        newest: Frame = self._raw_frames[0]
        if self._settings.max_pool:
            np.maximum(newest, self._raw_frames[1], out=newest)
        size = self._settings.screen_size
        if newest.shape == (size, size):
            return newest.copy()
        resized = cv2.resize(newest, (size, size), interpolation=cv2.INTER_AREA)
        return np.asarray(resized, dtype=np.uint8)


def make_atari_env(
    env_id: str,
    settings: AtariSettings,
    *,
    seed: int,
    render_mode: str | None = None,
    clip_rewards: bool | None = None,
) -> gym.Env[Frame, int]:
    """One preprocessed Atari env, reset once with `seed`; observations (stack, size, size) uint8.

    Equal, frame for frame, to env `i` of `make_atari_vector_env(seed=seed - i)`. Rewards
    are clipped when `clip_rewards` (default: `settings.reward_clipping`); pass False to
    evaluate on game scores. The action space is seeded with `seed` too.
    """
    _check(env_id, range(seed, seed + 1))
    env = gym.make(
        env_id,
        obs_type="grayscale",
        frameskip=1,
        repeat_action_probability=settings.sticky_action_prob,
        full_action_space=settings.full_action_space,
        max_num_frames_per_episode=None,  # AtariFrames counts frames as the vector env does
        render_mode=render_mode,
    )
    wrapped: gym.Env[Any, Any] = AtariFrames(env, settings)
    if settings.reward_clipping if clip_rewards is None else clip_rewards:
        wrapped = gym.wrappers.ClipReward(wrapped, -1.0, 1.0)
    wrapped = gym.wrappers.FrameStackObservation(wrapped, settings.frame_stack, padding_type="zero")
    wrapped.reset(seed=seed)
    wrapped.action_space.seed(seed)
    wrapped.observation_space.seed(seed)
    return wrapped


def make_atari_vector_env(
    env_id: str,
    settings: AtariSettings,
    *,
    num_envs: int,
    seed: int,
    clip_rewards: bool | None = None,
    num_threads: int = 0,
) -> AtariVectorEnv:
    """ale-py's native vector env, every setting passed explicitly, reset once with `seed`.

    `reset(seed=s)` seeds env `i` with `s + i` (ALE's random seed and the no-op generator),
    so env `i` equals `make_atari_env(seed=s + i)`. Autoreset is NEXT_STEP, gymnasium's
    default: the step after an episode ends resets that env, ignores its action and
    returns the first observation with reward 0. `num_threads` 0 lets ale-py use
    min(num_envs, cores); threads do not change results.
    """
    from ale_py.vector_env import AtariVectorEnv

    _check(env_id, range(seed, seed + num_envs))
    clip = settings.reward_clipping if clip_rewards is None else clip_rewards
    vector_env = AtariVectorEnv(
        gym.spec(env_id).kwargs["game"],
        num_envs,
        batch_size=num_envs,
        num_threads=num_threads,
        thread_affinity_offset=-1,
        max_num_frames_per_episode=settings.max_episode_frames,
        repeat_action_probability=settings.sticky_action_prob,
        full_action_space=settings.full_action_space,
        continuous=False,
        continuous_action_threshold=0.5,
        autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
        img_height=settings.screen_size,
        img_width=settings.screen_size,
        grayscale=True,
        stack_num=settings.frame_stack,
        frameskip=settings.frame_skip,
        maxpool=settings.max_pool,
        noop_max=settings.noop_max,
        episodic_life=settings.episodic_life,
        life_loss_info=False,
        reward_clipping=clip,
        use_fire_reset=settings.fire_reset,
    )
    vector_env.reset(seed=seed)
    vector_env.action_space.seed(seed)
    vector_env.single_action_space.seed(seed)
    return vector_env
