"""Pipelines, CLI, actions and reports of the curation toolkit."""
