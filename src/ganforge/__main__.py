"""`python -m ganforge ...` runs the CLI (also what torchrun launches)."""

from ganforge.cli import entry

entry()
