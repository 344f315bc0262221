"""Running a whole study in a fresh process, when this one cannot train it.

The jax engine needs Keras 3 on JAX in the process that trains, and Keras
3's backend is fixed when it is first imported. A user who built a model
with ``import keras`` on another backend (TensorFlow, say) and calls
:func:`widthvsprune.run_study` from that same Python gets the study run in
a new process started with ``KERAS_BACKEND=jax``: the study, its non-shipped
families (pickled: a derived family is a plain object) and the options go
there; the progress lines, the report and the result come back. No
``KERAS_BACKEND`` is asked of the user.
"""

import multiprocessing
import pickle
import sys

from widthvsprune import families
from widthvsprune.errors import StudyError, WidthVsPruneError, problem


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


def portable_families(study, study_file):
    """The non-shipped family the study needs, pickled for another process (nothing if a study file brings it).

    Raises:
        StudyError: for a family another process cannot rebuild (a builder
            defined in an interactive session, say).
    """
    if study.family in families.SHIPPED or study_file:
        return []
    family = families.get_family(study.family)
    try:
        return [pickle.dumps(family)]
    except Exception as error:  # a lambda, a closure, a function of __main__ in a notebook ...
        raise StudyError(problem("family", "a family another process can rebuild: a derived family "
                                 "(family_from_model), or a builder defined in a module or a study file",
                                 f"{study.family} ({type(error).__name__}: {error})")) from None


def _child(study_dict, pickled, study_file, out, options, queue):
    """The fresh process: registers the families, runs the study, sends the result (or the error) back."""
    from widthvsprune.run.study import Interrupted, run_study
    from widthvsprune.study import files, study_from_dict

    try:
        for blob in pickled:
            families.register_family(pickle.loads(blob), overwrite=True)
        if study_file:
            files.load_study(study_file)
        result = run_study(study_from_dict(study_dict), out, stream=_QueueStream(queue), study_file=study_file,
                           **options)
        queue.put(("result", result))
    except Interrupted as interrupted:
        queue.put(("interrupted", str(interrupted)))
    except WidthVsPruneError as error:
        queue.put(("error", error))
    except BaseException as error:  # reported in the parent, which raises it
        queue.put(("crash", f"{type(error).__name__}: {error}"))


def run_in_fresh_process(study, out, stream, study_file, options, environment):
    """Runs ``run_study`` in a new process with ``environment`` set; returns its result.

    Raises:
        Interrupted: on Ctrl-C (the child stops itself the same way).
        WidthVsPruneError: whatever the child raised of widthvsprune's errors.
    """
    from widthvsprune.run.processes import environment_set
    from widthvsprune.run.study import Interrupted

    stream = stream or sys.stdout
    pickled = portable_families(study, study_file)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with environment_set(environment):
        child = context.Process(target=_child, args=(study.to_dict(), pickled, study_file and str(study_file),
                                                     str(out), options, queue), daemon=True)
        child.start()
    outcome = None
    try:
        while outcome is None:
            kind, value = queue.get()
            if kind == "text":
                stream.write(value)
                stream.flush()
            else:
                outcome = (kind, value)
    except KeyboardInterrupt:  # the child got the same Ctrl-C: let it say what it kept
        kind, value = _last(queue)
        child.join(timeout=60)
        raise Interrupted(value if kind == "interrupted" else "interrupted; finished models are kept, run the "
                          "same command again to resume.") from None
    child.join()
    kind, value = outcome
    if kind == "result":
        return value
    if kind == "interrupted":
        raise Interrupted(value)
    if kind == "error":
        raise value
    raise RuntimeError(f"the study's process stopped: {value}")


def _last(queue, timeout=60):
    """The child's last word after a Ctrl-C (its text is dropped), or ``("", "")``."""
    import queue as queues

    try:
        while True:
            kind, value = queue.get(timeout=timeout)
            if kind != "text":
                return kind, value
    except (queues.Empty, KeyboardInterrupt):
        return "", ""
