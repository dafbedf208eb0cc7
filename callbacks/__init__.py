from callbacks.prediction_writer import PredictionWriter
from callbacks.quality import QualityMetrics
from callbacks.sample_images import SampleImages

__all__ = ["PredictionWriter", "QualityMetrics", "SampleImages"]
