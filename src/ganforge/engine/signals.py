"""Turning SIGINT and SIGTERM into a stop request that a training loop takes at its next safe point."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_signals_into(owner: object, attribute: str) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set `owner.<attribute>` to the signal's number instead of stopping.

    The loop that owns the attribute checks it at a safe point (the end of a step or an epoch), writes its
    checkpoint and stops. A SIGINT that arrives while a stop is already asked for raises KeyboardInterrupt:
    a second Ctrl-C stops at once. Python catches signals only in the main thread; elsewhere nothing
    changes. The previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, _frame: object) -> None:
        if getattr(owner, attribute) is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        setattr(owner, attribute, signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
