"""The contamination pipeline: find benchmark items in a training corpus, remove them with an audit trail.

Steps (:mod:`.pipeline`): data (a planted example corpus, or the user's store datasets) ->
evidence runs (n-gram, coverage, code, near-duplicate) -> combined verdict (document flags and an
item table) -> curated datasets (documents dropped, or matched spans cut) -> metrics against the
planted truth when there is one. Report sections are in :mod:`.report`.
"""
