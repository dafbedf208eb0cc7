"""The command line of the entry points: LightningCLI for training (``cli.fit.FitCLI``) and for prediction
(``cli.predict.PredictCLI``), sharing ``cli.base.PixelCLI``, and the one error and exit-code policy
(``cli.errors.reported_errors``) of ``train.py``, ``predict.py``, ``evaluate.py``, ``export.py`` and ``bench/``.

Nothing is imported here, so that a light entry point (``bench/report.py``) can take the error policy
without loading torch and Lightning.
"""
