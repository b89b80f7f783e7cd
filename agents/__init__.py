"""Agent plugins shipped with rlkit, registered through the `rlkit.agents` entry point."""
