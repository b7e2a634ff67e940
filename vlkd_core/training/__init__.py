"""The training engine: a readable recipe (loop.py) over small components."""
from .config import TrainConfig, load_config_file
from .loop import train
from .resume import config_for_resume

__all__ = ["TrainConfig", "config_for_resume", "load_config_file", "train"]
