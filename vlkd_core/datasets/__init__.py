"""Builtin datasets (registered by the ``builtin-datasets`` plugin)."""
