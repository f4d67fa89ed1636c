"""Pipelines: each in its own package (its steps, config and report sections)."""
