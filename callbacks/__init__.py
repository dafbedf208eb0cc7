from callbacks.prediction_writer import PredictionWriter
from callbacks.sample_images import SampleImages

__all__ = ["PredictionWriter", "SampleImages"]
