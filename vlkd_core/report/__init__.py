"""`vlkd report`: PNG plots and an HTML page for a finished run."""
from .build import build_report

__all__ = ["build_report"]
