"""Count XLA compilations and their time, from JAX's monitoring events (no log parsing)."""

from __future__ import annotations

import contextlib
import threading

import jax.monitoring

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


class CompileLog:
    """Number of backend compilations seen, and their summed wall time in seconds."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        self._lock = threading.Lock()

    def _listener(self, event: str, duration: float, **kwargs) -> None:
        if event == _BACKEND_COMPILE:
            with self._lock:
                self.count += 1
                self.seconds += duration


@contextlib.contextmanager
def track_compiles():
    """`with track_compiles() as log: ...` then read `log.count` and `log.seconds`."""
    log = CompileLog()
    jax.monitoring.register_event_duration_secs_listener(log._listener)
    try:
        yield log
    finally:
        jax.monitoring.unregister_event_duration_listener(log._listener)
