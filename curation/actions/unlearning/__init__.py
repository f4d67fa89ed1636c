"""Corrective unlearning: remove the effect of flagged training samples from a trained model.

See :mod:`curation.actions.unlearning.methods` for the methods and their settings.
"""
