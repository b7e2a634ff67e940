"""One-line notices for the user (a default a component derived from the data, ...).

Components call :func:`notice`; it goes to the standard ``logging`` logger ``vlkd`` at INFO, so
the Python API stays quiet unless the application configures logging, and the CLI prints each
notice as one dim line (rank 0 only under torchrun)."""
from __future__ import annotations

import logging

logger = logging.getLogger("vlkd")


def notice(message: str) -> None:
    logger.info(message)
