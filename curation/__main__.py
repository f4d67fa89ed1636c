"""`python -m curation` runs the CLI."""

from curation.cli import main

main()
