"""Several finished studies side by side: ``summary.csv``, ``summary.md`` and a figure (no framework imported).

:func:`compare_studies` reads any number of study results folders (their
run records, as ``widthvsprune report`` does, writing nothing into them) and
writes one row per study: what it compared, the headline's verdict at every
size point, the two arms' compression ratios within the study's tolerance
and the over-parameterization factor, plus the study's answer in words.
"""

import math
import os
import pathlib

import pandas as pd

from widthvsprune import arms, store
from widthvsprune.analysis import compare, hypothesis
from widthvsprune.analysis.tables import tables
from widthvsprune.errors import ResultsError

SUMMARY_COLUMNS = [
    "study", "family", "dataset", "wide_widths", "wide_size", "seeds", "test_examples", "engine", "tolerance",
    "contrast", "arm", "opponent", "verdicts", "arm_wins", "opponent_wins", "ties", "undecided", "detectable_low",
    "detectable_high", "arm_status", "arm_compression", "opponent_status", "opponent_compression",
    "overparameterization", "answer", "folder",
]


def study_row(found, folder, axis="nonzero_params"):
    """One study's row of ``summary.csv`` from its :class:`~widthvsprune.analysis.tables.Results`."""
    study, runs, comparison, tolerance = found.study, found.runs, found.comparison, found.tolerance
    head = arms.headline(study)
    rows = comparison[comparison.contrast == head.name].sort_values("target_sparsity")
    counts = rows.verdict.value_counts().to_dict()

    def frontier_of(name, tuning):
        match = arms.rows(tolerance, name, tuning, "arm_tuning")
        match = match[match.size_axis == axis]
        return match.iloc[0] if len(match) else None

    mine, theirs = frontier_of(head.arm, head.arm_tuning), frontier_of(head.opponent, head.opponent_tuning)
    baseline = hypothesis.reference_point(runs)
    detectable = rows.detectable.dropna()
    factor = theirs.ratio if theirs is not None and theirs.status in (hypothesis.REACHED, hypothesis.BEYOND) \
        else math.nan
    return {
        "study": study.name, "family": study.family, "dataset": study.dataset,
        "wide_widths": "x".join(map(str, study.widths)),
        "wide_size": baseline.sizes.get(axis, math.nan) if baseline else math.nan,
        "seeds": len(study.seeds), "test_examples": int(runs.test_examples.max()) if len(runs) else 0,
        "engine": ", ".join(sorted({str(e) for e in runs.engine.dropna()})) if "engine" in runs else "",
        "tolerance": study.tolerance, "contrast": head.name, "arm": head.arm, "opponent": head.opponent,
        "verdicts": "; ".join(f"{r.target_sparsity:g}: {r.verdict}" for r in rows.itertuples()),
        "arm_wins": counts.get(head.arm, 0), "opponent_wins": counts.get(head.opponent, 0),
        "ties": counts.get(compare.TIE, 0),
        "undecided": sum(v for k, v in counts.items() if k not in (head.arm, head.opponent, compare.TIE)),
        "detectable_low": float(detectable.min()) if len(detectable) else math.nan,
        "detectable_high": float(detectable.max()) if len(detectable) else math.nan,
        "arm_status": mine.status if mine is not None else "", "arm_compression": mine.ratio if mine is not None
        else math.nan, "opponent_status": theirs.status if theirs is not None else "",
        "opponent_compression": theirs.ratio if theirs is not None else math.nan,
        "overparameterization": factor, "answer": found.answer, "folder": str(folder),
    }


def _ratio(value, status):
    if not isinstance(value, float) or not math.isfinite(value):
        return status or ""
    return (">= " if status == hypothesis.BEYOND else "") + f"{value:.2f}x"


def markdown(summary, figure=True):
    """summary.md: one table row per study, then each study's answer in words."""
    arm, opponent = (arms.get(summary[c].iloc[0]).title if len(summary) else c for c in ("arm", "opponent"))
    header = ["study", "family", "dataset", "wide size", "seeds", "test examples", "engine", "verdicts (sparsity: "
              "verdict)", f"{arm} within tolerance", f"{opponent} within tolerance", "over-parameterization"]
    lines = ["# Studies compared: large-sparse versus small-dense", "",
             "One row per study; the verdicts are the headline contrast's (each arm tuned), the compression ratios "
             "the baseline's size over each arm's smallest size within the study's tolerance of the wide dense "
             "reference "
             "(docs/results.md), and the over-parameterization factor the small-dense one.", ""]
    if figure:
        lines += ["![One frontier per study](summary.png)", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in summary.itertuples():
        cells = [r.study, r.family, r.dataset, f"{r.wide_widths} ({r.wide_size:,.0f})" if math.isfinite(r.wide_size)
                 else r.wide_widths, str(r.seeds), f"{r.test_examples:,}", r.engine, r.verdicts,
                 _ratio(r.arm_compression, r.arm_status), _ratio(r.opponent_compression, r.opponent_status),
                 _ratio(r.overparameterization, r.opponent_status)]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines.append("")
    for r in summary.itertuples():
        lines += [f"## {r.study}", "", r.answer or "(no answer: nothing compared yet)", "", f"Folder: `{r.folder}`", ""]
    return "\n".join(lines)


def compare_studies(folders, out=None, size="nonzero_params", stream=None, plots=True):
    """Reads finished study folders and writes ``summary.csv``, ``summary.md`` and ``summary.png`` / ``.svg`` /
    ``.pdf`` (one small frontier panel per study).

    Nothing is written into the study folders, and no framework is imported.

    Args:
        folders: study results folders (``results/<study>``), one or more.
        out: where to write; ``None``: the folders' common parent (the
            results root when they share one).
        size: the size axis of the figure.
        stream: where to print the summary (``None``: nowhere).
        plots: whether to draw the figure.

    Returns:
        The summary as a DataFrame (:data:`SUMMARY_COLUMNS`).

    Raises:
        ResultsError: if no folder is given, or one is not a study results folder.

    Example:

    ```python
    import widthvsprune

    summary = widthvsprune.compare_studies(["results/quickstart", "results/mnist1d"])
    summary[["study", "verdicts", "overparameterization"]]
    ```
    """
    folders = [pathlib.Path(f) for f in folders]
    if not folders:
        raise ResultsError("DIR: Expected one or more study results folders. Received: DIR=[]")
    out = pathlib.Path(out) if out is not None else pathlib.Path(
        os.path.commonpath([str(f.resolve().parent) for f in folders]))
    found = [(folder, tables(folder, size).results) for folder in folders]
    summary = pd.DataFrame([study_row(results, folder) for folder, results in found], columns=SUMMARY_COLUMNS)
    store.write_csv(store.table(out, "summary.csv"), summary)
    drawn = plots and any(not results.frontier.empty for _, results in found)
    if drawn:
        from widthvsprune.analysis import plots as figures

        figures.summary_figure([(r.study, r.frontier, r.tolerance) for _, r in found if not r.frontier.empty], out,
                               size)
    store.write_bytes(store.table(out, "summary.md"), markdown(summary, drawn).encode())
    if stream is not None:
        print(text(summary, out, drawn), file=stream)
    return summary


def text(summary, out, drawn):
    """What ``widthvsprune summary`` prints: one line per study, then where the files are."""
    lines = []
    for r in summary.itertuples():
        lines.append(f"{r.study} ({r.family} on {r.dataset}, {r.seeds} seed(s), {r.test_examples:,} test examples, "
                     f"{r.engine}): {r.verdicts}; compression within {compare.effect_words(r.tolerance)}: "
                     f"{arms.get(r.arm).title} {_ratio(r.arm_compression, r.arm_status)}, "
                     f"{arms.get(r.opponent).title} {_ratio(r.opponent_compression, r.opponent_status)}")
    lines += ["", f"summary.csv: {store.table(out, 'summary.csv')}", f"summary.md:  {store.table(out, 'summary.md')}"]
    if drawn:
        lines.append(f"figure:      {store.table(out, 'summary.png')} (also .svg and .pdf)")
    return "\n".join(lines)

