"""Towers, heads and the model, private (plugins import vlkd_core.sdk): abilities, encoding, loading."""
