"""A dependency-free progress bar for stderr: runs done, runs/s and ETA."""

from __future__ import annotations

import sys
import time


def _fmt_s(s: float) -> str:
    if s != s or s == float("inf"):
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    """`bar = Progress(total, label); bar.update(k); bar.close()`. Redraws in place on a TTY,
    prints a line per update otherwise (so logs of CI runs stay readable). `already_done` runs (finished
    by an earlier, resumed session) count towards the bar but not towards the rate and the ETA."""

    def __init__(
        self, total: int, label: str = "", *, enabled: bool = True, stream=None, width: int = 24, already_done: int = 0
    ):
        self.total, self.label, self.enabled, self.width = total, label, enabled, width
        self.stream = stream if stream is not None else sys.stderr
        self.done = self.already_done = already_done
        self.t0 = time.perf_counter()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.t0
        rate = (self.done - self.already_done) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        filled = int(self.width * self.done / max(self.total, 1))
        bar = "█" * filled + "░" * (self.width - filled)
        return f"{self.label} {bar} {self.done}/{self.total} runs  {rate:.2f} runs/s  elapsed {_fmt_s(elapsed)}  ETA {_fmt_s(eta)}"

    def update(self, k: int = 1) -> None:
        self.done += k
        if self.enabled:
            end = "\r" if self.tty else "\n"
            self.stream.write(self.line() + end)
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
