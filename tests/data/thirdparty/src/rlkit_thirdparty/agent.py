"""A do-nothing-clever agent: always the last action. Shows the agent interface only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FirstActionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    action: int = 1


class FirstAction:
    summary = "always takes one fixed action (third-party example)"
    paper = "none"
    default_steps = 1000
    Config = FirstActionConfig

    def __init__(self, config, *, observation_space, action_space, seed):
        self.config = config
        self._step = 0

    @classmethod
    def check_spaces(cls, env_id, observation_space, action_space):
        pass

    @property
    def step(self):
        return self._step

    def learn(self, total_steps, run):
        env = run.env
        env.reset()
        episode_return, length = 0.0, 0
        while self._step < total_steps and not run.stop_requested:
            _, reward, terminated, truncated, info = env.step(self.config.action)
            self._step += 1
            episode_return += reward
            length += 1
            if terminated or truncated:
                run.episode_end(self, episode_return, length, info)
                env.reset()
                episode_return, length = 0.0, 0

    def act(self, observation, state=None):
        return self.config.action, None

    def initial_state(self):
        return None

    def state_dict(self):
        return {"step": self._step}

    def load_state_dict(self, state):
        self._step = int(state["step"])


class NotAnAgent:
    """Registered on purpose to show that rlkit checks the interface when it loads a plugin."""

    summary = "broken example"
