"""Errors of the curation layer that the CLI prints as one line (no traceback)."""

from __future__ import annotations


class CurationError(Exception):
    """A request the curation layer cannot carry out; the message says what is wrong and what to do."""


class PipelineError(CurationError):
    """A pipeline step cannot proceed with the given data or settings."""


class RequestError(CurationError):
    """A command's options do not make a runnable request; names the option at fault."""
