"""The runtime, private (plugins import vlkd_core.sdk): ranks, worker processes, network, notices."""
