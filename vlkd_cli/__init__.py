"""The `vlkd` command line: parses, calls vlkd_core, renders with rich."""
