"""Run files, private (plugins import vlkd_core.sdk): what vlkd writes and reads back, folder rules."""
