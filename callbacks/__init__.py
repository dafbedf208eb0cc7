from callbacks.prediction_writer import PredictionWriter
from callbacks.quality import QualityMetrics
from callbacks.random_state import RandomState
from callbacks.sample_images import SampleImages
from callbacks.stop_checkpoint import StopCheckpoint

__all__ = ["PredictionWriter", "QualityMetrics", "RandomState", "SampleImages", "StopCheckpoint"]
