"""Actions on a trained model after curation: unlearning flagged samples (and retraining without them)."""
