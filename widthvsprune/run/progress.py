"""Progress lines: one per trained model, with how much is done and left."""

import sys
import time


def clock(seconds):
    """``m:ss`` (or ``h:mm:ss``) of a duration in seconds."""
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One line per trained model: what, how many done, elapsed and remaining.

    Args:
        total: models the study trains at most.
        stream: where lines go (standard output by default).
        prefix: put before every line (``[w2]`` for a helper process).
    """

    def __init__(self, total, stream=None, prefix=""):
        self.total, self.done = total, 0
        self.start = time.perf_counter()
        self.stream = stream or sys.stdout
        self.prefix = prefix

    def remaining(self, n):
        """Sets how many models are left to train in the whole study (by any process)."""
        self.total = self.done + max(0, int(n))

    def line(self, what, seconds=None, **metrics):
        self.done += 1
        self.total = max(self.total, self.done)
        elapsed = time.perf_counter() - self.start
        left = max(0, self.total - self.done)
        per = elapsed / self.done if self.done else 0.0
        parts = [f"{self.prefix}[{self.done:>3}/{self.total}] {what}"]
        parts += [f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
        if seconds is not None:
            parts.append(f"{seconds:.1f}s")
        parts.append(f"| elapsed {clock(elapsed)}, ~{clock(per * left)} left")
        print("  ".join(parts), file=self.stream, flush=True)

    def note(self, text):
        print(f"{self.prefix}{text}", file=self.stream, flush=True)
