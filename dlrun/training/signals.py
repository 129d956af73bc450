"""SIGTERM as Ctrl-C: `kill PID`, a batch scheduler's time limit or a container stopping ends a
run the way Ctrl-C does, with its status, checkpoint and results written."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def sigterm_as_interrupt():
    """Within the block SIGTERM raises KeyboardInterrupt; the previous handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers, and only it would receive the signal
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        # None: a handler Python did not install; the default is the closest it can restore.
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
