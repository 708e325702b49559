"""gflow.deep: FLS sweeps of deep nets (MLP, CNN, VGG, ResNet) trained by SGD with an output multiplier c.

Data flows config → data → models → train (vmapped SGD lanes with a stop rule) → sweep (chunked run
directory) → analysis / plot. Importing this package does not import matplotlib, sklearn or mnist1d.
"""

from .config import DeepConfig as DeepConfig
from .config import DeepDataConfig as DeepDataConfig
from .config import DeepModelConfig as DeepModelConfig
from .config import DeepSweepConfig as DeepSweepConfig
from .config import TrainConfig as TrainConfig
from .data import DeepDataset as DeepDataset
from .data import load_dataset as load_dataset
from .models import build_model as build_model
from .sweep import DeepSweepResult as DeepSweepResult
from .sweep import run_deep_sweep as run_deep_sweep
from .train import STATUS_NAMES as STATUS_NAMES
from .train import STATUSES as STATUSES
from .train import train_run as train_run
