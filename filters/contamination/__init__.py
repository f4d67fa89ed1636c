"""Benchmark contamination: which benchmark items appear in a training corpus, in which documents and how.

Evidence modules (each writes its own run of ``contamination_matches`` rows with reasons):
``ngrams`` (janitor-style n-gram overlap, absolute hits, token coverage), ``near_dup`` (MinHash LSH
confirmed by exact Jaccard); the ``ContaminationFilter`` combines them into document flags and an
item-level verdict.
"""
