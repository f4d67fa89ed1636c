"""The noisy chain-of-thought pipeline (plant noise in TInt traces, detect it, curate, retrain).

Its report sections are in :mod:`.report`."""
