"""Junk ("brain rot") and low-value text: rule evidence now; perplexity, classifier and influence to come (issue 14)."""
