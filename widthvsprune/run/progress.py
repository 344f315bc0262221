"""Progress of a study: one display for every process that shares it.

Each worker process (the one ``run`` started and its helpers) reports what
it does through a :class:`Reporter`: a model trained (a run or a search
trial), a note, its estimate of the models left, where its time went. The
helpers' reports travel to the first process through a queue; there one
:class:`Display` prints them in the order they arrive, with one counter of
the models left in the whole study (it only goes down), one clock, and an
estimate of the time left from the measured rate of finished models (it says
"estimating" until enough models have finished; the time before the first
model finished, imports and compilation, is left out of the rate). On a
terminal the counter, clock and estimate stay on a status line at the
bottom (``rich``); otherwise every finished model's line carries them, and
notes (what is training now) are indented under them.
"""

import contextlib
import dataclasses
import sys
import threading
import time
from typing import Optional, Tuple

#: Models finished, and seconds since the first one, before the estimate of the time left is shown.
ESTIMATE_AFTER = (5, 3.0)

#: The share of the workers' compiling after the first model that the estimate leaves out of its rate.
COMPILING_LEFT_OUT = 0.5


def clock(seconds):
    """``m:ss`` (or ``h:mm:ss``) of a duration in seconds."""
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing a worker reports.

    Attributes:
        kind: ``"model"`` (a model finished training), ``"note"``, ``"left"``
            (the worker's count of models left in the study), ``"compiled"``
            (seconds a pack spent compiling, in ``timings``) or ``"timing"``.
        worker: the worker's number (1 is the process ``run`` started).
        text: what the model was, or the note.
        metrics: ``(name, value)`` pairs shown with a model.
        pack: ``(models, seconds)`` of the pack the model trained in.
        left: the models left, for ``"left"``.
        timings: ``(part, seconds)`` pairs, for ``"timing"``.
        total: ``(most trainings, never trained)`` of the study, for ``"left"``.
    """

    kind: str
    worker: int = 1
    text: str = ""
    metrics: Tuple = ()
    pack: Tuple = ()
    left: Optional[int] = None
    timings: Tuple = ()
    total: Optional[Tuple[int, int]] = None


class Reporter:
    """What one worker tells the study's display.

    Args:
        send: where events go: a :class:`Display` in this process, or a
            queue's ``put`` towards the first process's display.
        worker: this worker's number.
    """

    def __init__(self, send, worker=1):
        self.send, self.worker = send, worker

    def remaining(self, n, total=None, never=0):
        """The models left to train in the whole study (search trials included), as this worker sees it.

        Args:
            n: the models left.
            total: the most the study trains (``plan.max_trainings``), when known.
            never: of those, the ones that will never train (skipped size points, searches that stopped short).
        """
        self.send(Event("left", self.worker, left=max(0, int(n)),
                        total=None if total is None else (int(total), int(never))))

    def line(self, what, pack=None, **metrics):
        """A model finished: ``what`` it was, the ``(models, seconds)`` of its pack, and metrics to show."""
        self.send(Event("model", self.worker, what, tuple(metrics.items()), tuple(pack or ())))

    def note(self, text):
        self.send(Event("note", self.worker, text))

    def compiled(self, seconds):
        """A pack spent ``seconds`` compiling programs (left out of the rate the estimate of the time left uses)."""
        if seconds > 0:
            self.send(Event("compiled", self.worker, timings=(("compiling", float(seconds)),)))

    def timing(self, parts):
        self.send(Event("timing", self.worker, timings=tuple(parts.items())))


def _format_metric(name, value):
    return f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}"


class Display:
    """Prints the events of every worker of a study in arrival order, with one counter, one clock, an estimate.

    Args:
        stream: where lines go (standard output by default).
        workers: processes sharing the study (the worker tag is shown when more than one).
        live: keep the counter on a status line at the bottom (``rich``);
            ``None``: when ``stream`` is a terminal.
    """

    def __init__(self, stream=None, workers=1, live=None):
        self.stream = stream or sys.stdout
        self.workers = workers
        self.start = time.perf_counter()
        self.first = None  # when the first model finished
        self.compiling = 0.0  # seconds the workers spent compiling since then, all together
        self.done = 0
        self.left = None
        self.total, self.never, self.base = None, 0, None  # the study's totals, once a worker reports them
        self.timings = {}
        self._lock = threading.Lock()
        self._live = None
        if live is None:
            live = bool(getattr(self.stream, "isatty", lambda: False)())
        if live:
            self._start_live()

    def _start_live(self):
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:  # pragma: no cover - rich comes with Keras
            return
        self._console = Console(file=self.stream)
        self._live = Live(self._status(), console=self._console, refresh_per_second=4, transient=True)
        self._live.start()

    # ---- what the counter shows -------------------------------------------------------

    def estimate(self):
        """Seconds left, from the rate of models finished since the first one; ``None`` while estimating.

        Half of the compiling seen since the first model is left out of the
        rate: a program is compiled once per shape, at the start of each
        stage, so compiling is a smaller share of what is left than of what
        is done. (On the quickstart, counting all of it overestimated the time
        left 3 times at a third of the run; leaving all of it out
        underestimated it 2.5 times near the end.)
        """
        if self.first is None or self.left is None:
            return None
        since = time.perf_counter() - self.first
        if self.done < ESTIMATE_AFTER[0] or since < ESTIMATE_AFTER[1]:
            return None
        working = max(since - COMPILING_LEFT_OUT * self.compiling / max(1, self.workers), 0.25 * since)
        return self.left * working / (self.done - 1)

    def _status(self):
        elapsed = clock(time.perf_counter() - self.start)
        left = "?" if self.left is None else str(self.left)
        eta = self.estimate()
        return f"{left} left | {elapsed} | " + ("estimating" if eta is None else f"~{clock(eta)} to go")

    # ---- events ------------------------------------------------------------------------

    def _report(self, event):
        """A worker's count. With the study's totals, the counter is the most the study trains, less what will
        never train, less what was settled before this display started (``base``), less the models shown: one
        down per model shown, whichever worker surveyed the store when (a survey counts the models other workers
        have finished but not yet shown, which a count taken from it would count twice)."""
        if event.total is None:
            self.left = event.left if self.left is None else min(self.left, event.left)
            return
        total, never = event.total
        self.total = max(self.total or 0, total)  # it grows as runs beyond the arms' bounds are planned
        self.never = max(self.never, never)  # and what will never train, as searches settle
        if self.base is None:  # the first count: what was settled before any model was shown here
            self.base = max(0, total - never - event.left - self.done)
        self._count()

    def _count(self):
        if self.base is not None:
            self.left = max(0, self.total - self.never - self.base - self.done)
        elif self.left is not None:
            self.left = max(0, self.left - 1)

    def __call__(self, event):
        with self._lock:
            if event.kind == "left":
                self._report(event)
            elif event.kind == "model":
                self.done += 1
                self.first = self.first or time.perf_counter()
                self._count()
                self._print(event, self._model_text(event))
            elif event.kind == "note":
                self._print(event, event.text, counter=False)
            elif event.kind == "compiled":
                if self.first is not None:  # before the first model, all time is left out already
                    self.compiling += sum(seconds for _, seconds in event.timings)
            elif event.kind == "timing":
                for part, seconds in event.timings:
                    self.timings[part] = self.timings.get(part, 0.0) + seconds
            if self._live is not None:
                self._live.update(self._status())

    def _model_text(self, event):
        parts = [event.text] + [_format_metric(k, v) for k, v in event.metrics]
        if event.pack:
            models, seconds = event.pack
            parts.append(f"({seconds:.2g}s" if seconds < 0.1 else f"({seconds:.1f}s")
            parts[-1] += f" for a pack of {models})" if models > 1 else ")"
        return "  ".join(parts)

    def _print(self, event, text, counter=True):
        """A line: a finished model's with the counter in front (plain output), a note indented under them."""
        tag = f"w{event.worker} " if self.workers > 1 else ""
        if self._live is not None:
            self._console.print(f"{tag}{text}", markup=False, highlight=False, soft_wrap=True)
        elif counter:
            print(f"[{self._status()}] {tag}{text}", file=self.stream, flush=True)
        else:
            print(f"    {tag}{text}", file=self.stream, flush=True)

    def message(self, text):
        """A line outside the model counter (the summary after the run)."""
        with self._lock:
            if self._live is not None:
                self._console.print(text, markup=False, highlight=False, soft_wrap=True)
            else:
                print(text, file=self.stream, flush=True)

    def close(self):
        with self._lock:
            if self._live is not None:
                self._live.stop()
                self._live = None


class Stopwatch:
    """Seconds a worker spent per part of its work: ``with watch("training"): ...``."""

    def __init__(self):
        self.parts = {}

    @contextlib.contextmanager
    def __call__(self, part):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(part, time.perf_counter() - start)

    def add(self, part, seconds):
        self.parts[part] = self.parts.get(part, 0.0) + float(seconds)


#: The parts of a study's time, in the order the summary lists them.
PARTS = ("setup", "training", "compiling", "proposals", "records", "surveys", "waiting", "reports")


#: Not a time: the programs the engines compiled, counted beside the parts (the jax engine's; ``-v`` shows them).
PROGRAMS = "programs"
#: Not a time: the searches run ahead of their stage (:meth:`widthvsprune.run.scheduler.Runner.run_ahead`).
AHEAD = "searches ahead"
COUNTS = (PROGRAMS, AHEAD)


def breakdown(timings):
    """Where the time went, in words: one ``part: seconds`` per part that took any, the programs compiled and the
    searches run ahead."""
    order = [p for p in PARTS if p in timings] + sorted(p for p in timings if p not in PARTS and p not in COUNTS)
    lines = [f"  {part:<10} {timings[part]:8.1f} s" for part in order if timings[part] >= 0.05]
    if timings.get(PROGRAMS):
        lines.append(f"  ({int(timings[PROGRAMS])} programs compiled)")
    if timings.get(AHEAD):
        lines.append(f"  ({int(timings[AHEAD])} search(es) run ahead of their stage, at an expected budget)")
    return lines


def drain(queue, display):
    """Starts a thread that hands the queue's events to ``display`` until it gets ``None``; returns the thread."""

    def loop():
        while True:
            event = queue.get()
            if event is None:
                return
            display(event)

    thread = threading.Thread(target=loop, name="progress", daemon=True)
    thread.start()
    return thread


def silent():
    """A reporter that shows nothing (a probe of what is left)."""
    return Reporter(lambda event: None)
