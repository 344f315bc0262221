"""One progress display per study: one counter of the models left that only goes down, one clock, an estimate."""

import io
import re

from widthvsprune.run import progress
from widthvsprune.run.progress import Event, Reporter


def counters(text):
    return [int(m) for m in re.findall(r"^\[(\d+) left \| ", text, re.M)]


def test_the_counter_only_goes_down_whatever_order_the_workers_report_in():
    stream = io.StringIO()
    display = progress.Display(stream, workers=2, live=False)
    first, second = Reporter(display, 1), Reporter(display, 2)
    first.remaining(10)
    second.remaining(12)  # a worker that surveyed earlier sees more left: the counter keeps the lower bound
    for i in range(4):
        (first if i % 2 else second).line(f"model {i}", (2, 0.5), val_acc=0.5)
    first.remaining(7)  # a survey that counts more left than the counter: the counter keeps the lower bound
    second.line("model 4", (1, 0.2))
    first.note("a note")
    seen = counters(stream.getvalue())
    assert seen == [9, 8, 7, 6, 5] and seen == sorted(seen, reverse=True)
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("w2 model 0  val_acc=0.5000  (0.5s for a pack of 2)")
    assert lines[1].startswith("[8 left | 0:00 | estimating] w1 model 1")
    assert lines[-2].endswith("w2 model 4  (0.2s)")
    assert lines[-1] == "    w1 a note"  # notes are indented under the counted lines


def test_the_estimate_waits_for_enough_finished_models_and_leaves_out_the_time_before_the_first(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    display = progress.Display(io.StringIO(), live=False)
    reporter = Reporter(display)
    reporter.remaining(100)
    now[0] += 60.0  # imports and compilation before the first model
    reporter.line("first")
    for _ in range(4):
        now[0] += 2.0
        reporter.line("next")
    assert display.estimate() == 95 * 8.0 / 4  # 2 s a model since the first, 95 left
    display.done, display.first = 3, now[0]
    assert display.estimate() is None  # too few models to tell


def test_compiling_after_the_first_model_is_partly_left_out_of_the_rate_shared_by_the_workers(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: now[0])
    display = progress.Display(io.StringIO(), workers=2, live=False)
    first, second = Reporter(display, 1), Reporter(display, 2)
    first.remaining(100)
    first.compiled(30.0)  # before the first model: already left out
    first.line("first")
    for reporter in (first, second, first, second):
        now[0] += 3.0
        reporter.compiled(2.0)  # each pack compiled for 2 s of its worker's 3
        reporter.line("next")
    # 12 s since the first model, of which 8 s of compiling over 2 workers: half of it is left out.
    assert display.compiling == 8.0 and display.estimate() == 95 * (12.0 - progress.COMPILING_LEFT_OUT * 4.0) / 4
    assert display.estimate() < 95 * 12.0 / 4
    first.compiled(0.0)
    assert display.compiling == 8.0  # nothing compiled, nothing sent


def test_where_the_time_went_sums_the_workers_parts():
    display = progress.Display(io.StringIO(), live=False)
    display(Event("timing", 1, timings=(("training", 3.0), ("waiting", 1.0))))
    display(Event("timing", 2, timings=(("training", 2.0), ("compiling", 4.0))))
    assert display.timings == {"training": 5.0, "waiting": 1.0, "compiling": 4.0}
    assert progress.breakdown(display.timings) == ["  training        5.0 s", "  compiling       4.0 s",
                                                   "  waiting         1.0 s"]


def test_the_programs_every_worker_compiled_are_counted_beside_the_parts_not_as_seconds():
    display = progress.Display(io.StringIO(), live=False)
    display(Event("timing", 1, timings=(("compiling", 2.0), (progress.PROGRAMS, 3.0))))
    display(Event("timing", 2, timings=(("compiling", 1.0), (progress.PROGRAMS, 2.0))))
    assert progress.breakdown(display.timings) == ["  compiling       3.0 s", "  (5 programs compiled)"]


def test_with_the_studys_totals_the_counter_goes_down_one_per_model_while_other_workers_events_are_in_flight():
    stream = io.StringIO()
    display = progress.Display(stream, workers=2, live=False)
    first, second = Reporter(display, 1), Reporter(display, 2)
    first.remaining(10, total=14, never=0)  # 4 models were done before this command: 10 left
    second.line("model 1", (1, 0.1))
    first.remaining(7, total=14, never=0)  # surveyed after the helper finished 2 more, not shown yet
    second.line("model 2", (1, 0.1))
    second.line("model 3", (1, 0.1))
    first.line("model 4", (1, 0.1))
    first.remaining(6, total=15, never=0)  # a model above an underfilled budget is planned: one more
    first.line("model 5", (1, 0.1))
    second.remaining(3, total=15, never=2)  # a search stopped two trials short
    first.line("model 6", (1, 0.1))
    assert counters(stream.getvalue()) == [9, 8, 7, 6, 6, 3]
    display.done += 3
    second.remaining(0, total=15, never=2)
    assert display.left == 0
