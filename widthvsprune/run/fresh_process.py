"""Running a function in a fresh Python process, its printed lines and its result brought back.

The jax engine needs Keras 3 on JAX in the process that trains, and Keras
3's backend is fixed when it is first imported. A user who built a model
with ``import keras`` on another backend (TensorFlow, say) and calls
:func:`widthvsprune.run_study` from that same Python gets the study run in a
new process started with ``KERAS_BACKEND=jax`` (:func:`call_in_fresh_process`):
the study, its non-shipped families (pickled: a derived family is a plain
object, :func:`portable_families`) and the options go there; the progress
lines, the report and the result come back. No ``KERAS_BACKEND`` is asked
of the user.
"""

import multiprocessing
import pickle
import queue as queues
import sys

from widthvsprune import families
from widthvsprune.errors import StudyError, WidthVsPruneError, problem
from widthvsprune.executors.base import environment_set
from widthvsprune.run.processes import Interrupted


class _QueueStream:
    """A text stream whose writes go to the parent process."""

    def __init__(self, queue):
        self.queue = queue

    def write(self, text):
        self.queue.put(("text", text))
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def portable_families(name, study_file):
    """The non-shipped family ``name``, pickled for another process (nothing when a study file brings it).

    Raises:
        StudyError: for a family another process cannot rebuild (a builder
            defined in an interactive session, say).
    """
    if name in families.SHIPPED or study_file:
        return []
    family = families.get_family(name)
    try:
        return [pickle.dumps(family)]
    except Exception as error:  # a lambda, a closure, a function of __main__ in a notebook ...
        raise StudyError(problem("family", "a family another process can rebuild: a derived family "
                                 "(family_from_model), or a builder defined in a module or a study file",
                                 f"{name} ({type(error).__name__}: {error})")) from None


def _trampoline(target, args, queue):
    """The fresh process: calls ``target(*args, stream=...)`` and sends back its result, or what stopped it."""
    try:
        queue.put(("result", target(*args, stream=_QueueStream(queue))))
    except Interrupted as interrupted:
        queue.put(("interrupted", str(interrupted)))
    except WidthVsPruneError as error:
        queue.put(("error", error))
    except BaseException as error:  # reported in the parent, which raises it
        queue.put(("crash", f"{type(error).__name__}: {error}"))


def call_in_fresh_process(target, args, environment, stream=None):
    """``target(*args, stream=s)`` run in a new process with ``environment`` set; what it writes to ``s`` is
    written to ``stream`` here.

    Args:
        target: a module-level function (it is sent by reference).
        args: its arguments (picklable).
        environment: variables the new process starts with.
        stream: where its text goes (standard output by default).

    Returns:
        What ``target`` returned.

    Raises:
        Interrupted: on Ctrl-C (the child, which gets it too, says what it kept).
        WidthVsPruneError: what the child raised of widthvsprune's errors.
    """
    stream = stream or sys.stdout
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with environment_set(environment):
        child = context.Process(target=_trampoline, args=(target, args, queue), daemon=True)
        child.start()
    try:
        kind, value = _relay(queue, stream, child)
    except KeyboardInterrupt:
        kind, value = _last(queue)
        child.join(timeout=60)
        raise Interrupted(value if kind == "interrupted" else "interrupted; finished models are kept, run the "
                          "same command again to resume.") from None
    child.join()
    if kind == "result":
        return value
    if kind == "interrupted":
        raise Interrupted(value)
    if kind == "error":
        raise value
    raise RuntimeError(f"the study's process stopped: {value}")


def _relay(queue, stream, child, poll=1.0):
    """Writes the child's text to ``stream`` until its last word; a child that died without one is a crash."""
    while True:
        try:
            kind, value = queue.get(timeout=poll)
        except queues.Empty:
            if child.is_alive():
                continue
            try:  # what it sent just before it ended
                kind, value = queue.get(timeout=poll)
            except queues.Empty:
                return "crash", f"it ended with exit code {child.exitcode} before it reported"
        if kind != "text":
            return kind, value
        stream.write(value)
        stream.flush()


def _last(queue, timeout=60):
    """The child's last word after a Ctrl-C (its text is dropped), or ``("", "")``."""
    try:
        while True:
            kind, value = queue.get(timeout=timeout)
            if kind != "text":
                return kind, value
    except (queues.Empty, KeyboardInterrupt):
        return "", ""
