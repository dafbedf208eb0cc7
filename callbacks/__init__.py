from callbacks.elapsed_time import ElapsedTime
from callbacks.learning_rate import LearningRateMonitor
from callbacks.prediction_writer import PredictionWriter
from callbacks.quality import QualityMetrics
from callbacks.random_state import RandomState
from callbacks.sample_images import SampleImages
from callbacks.stop_checkpoint import StopCheckpoint
from callbacks.time_budget import TimeBudget
from callbacks.train_reranker import TrainReranker
from callbacks.wandb_logger import WandbLogger

__all__ = [
    "ElapsedTime",
    "LearningRateMonitor",
    "PredictionWriter",
    "QualityMetrics",
    "RandomState",
    "SampleImages",
    "StopCheckpoint",
    "TimeBudget",
    "TrainReranker",
    "WandbLogger",
]
