"""Reusable pipeline steps: plain functions over a store that every pipeline and command uses.

- :mod:`.records`: write in-memory records into the store as datasets, under one ``generate`` run;
- :mod:`.generate`: generated datasets with planted, known problems (TInt traces).
"""
