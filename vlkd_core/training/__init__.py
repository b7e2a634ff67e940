"""The training engine: a readable recipe (loop.py) over small components."""
from .config import TrainConfig, load_config_file
from .loop import train

__all__ = ["TrainConfig", "load_config_file", "train"]
