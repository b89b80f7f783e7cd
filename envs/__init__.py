"""Environment plugins shipped with rlkit, registered through the `rlkit.envs` entry point."""
