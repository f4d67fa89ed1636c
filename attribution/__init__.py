"""The attribution engine (influence scores and baselines); see issue 3."""
