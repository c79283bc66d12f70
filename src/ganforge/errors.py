"""Errors that a user can cause and fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, flag, file). The message names what is wrong."""


class TrainingDiverged(Exception):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""
