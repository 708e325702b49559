"""Count XLA compilations and their time, from JAX's monitoring events (no log parsing)."""

from __future__ import annotations

import contextlib
import threading

import jax.monitoring

_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_CACHE_HIT = "/jax/compilation_cache/cache_hits"


class CompileLog:
    """Number of backend compilations seen, and their summed wall time in seconds.

    `count` includes programs loaded from JAX's persistent compilation cache (`cache_hits` of them);
    `new` = count − cache_hits is what was actually compiled."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        self.cache_hits = 0
        self._lock = threading.Lock()

    @property
    def new(self) -> int:
        return self.count - self.cache_hits

    def _hit(self, event: str, **kwargs) -> None:
        if event == _CACHE_HIT:
            with self._lock:
                self.cache_hits += 1

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
    jax.monitoring.register_event_listener(log._hit)
    try:
        yield log
    finally:
        jax.monitoring.unregister_event_duration_listener(log._listener)
        jax.monitoring.unregister_event_listener(log._hit)
