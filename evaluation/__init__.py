"""Judging completions as the course does: FID and PDR metrics, their feature extractors, and the dev-split
scoring loop.

Above the models (it runs them and the classifier), below the entry points and callbacks that report its numbers.
The classifier itself and the failed completions it trains on stay in ``lightning_modules/``: it is a
LightningModule trained by ``train.py`` like the generators.
"""
