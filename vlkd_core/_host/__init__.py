"""The plugin host, private (plugins import vlkd_core.sdk): plugin manager, registries, grammars."""
