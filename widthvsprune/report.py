"""Tables, figures and the verdict, derived from the run records alone.

Everything written here can be regenerated at any time with
``widthvsprune report DIR``: ``runs.csv`` (one row per trained model),
``comparison.csv`` (one row per target sparsity), ``frontier.csv`` (one row
per arm and size point), ``frontier.png``/``frontier.svg`` and ``report.md``.
"""

import math
import sys

import pandas as pd

from widthvsprune import planning, records, results, stats, storing
from widthvsprune.errors import ResultsError
from widthvsprune.measuring import SIZE_AXES

COMPARISON_COLUMNS = [
    "target_sparsity", "pruned_nonzero_params", "narrow_params", "narrow_widths",
    "pruned_test_accuracy", "narrow_test_accuracy", "delta", "delta_ci_low", "delta_ci_high",
    "n_seeds", "verdict", "size_axis", "pruned_size", "narrow_size", "note",
]


def collect(root, study=None):
    """Every record (done or failed) of the study's planned runs, and the survey they come from."""
    study = study or results.load_study(root)
    survey = results.survey(study, root)
    return survey.records(), survey


def runs_frame(records_):
    rows = [records.ok_row(r) for r in records_ if r.get("status") == "ok"]
    frame = pd.DataFrame(rows, columns=records.COLUMNS)
    return frame.sort_values(["arm", "target_sparsity", "seed"], kind="stable").reset_index(drop=True)


def comparison_frame(study, records, survey, size="nonzero_params"):
    rows = []
    for target in study.sparsities:
        pruned = [r for r in records if r["arm"] == "pruned" and r.get("target_sparsity") == target]
        narrow = [r for r in records if r["arm"] == "narrow" and r.get("target_sparsity") == target]
        ok_p = [r for r in pruned if r.get("status") == "ok"]
        ok_n = [r for r in narrow if r.get("status") == "ok"]
        row = {c: float("nan") for c in COMPARISON_COLUMNS}
        row.update(target_sparsity=target, size_axis=size, note="", narrow_widths="")
        row["pruned_nonzero_params"] = planning.budget_of(ok_p) if ok_p else float("nan")
        row["pruned_test_accuracy"] = _mean(r["test_accuracy"] for r in ok_p)
        row["pruned_size"] = _mean(r.get(size) for r in ok_p)
        row["n_seeds"] = min(len(ok_p), len(ok_n))
        skipped = survey.plan.skipped.get(target, "")
        if skipped.startswith("no-narrow-fits"):
            row.update(verdict="no-narrow-fits", note=skipped)
        elif not ok_p or not ok_n:
            failed = [r for r in pruned + narrow if r.get("status") == "failed"]
            row.update(verdict="missing", note=f"{len(failed)} failed run(s)" if failed else "not trained yet")
        else:
            row["narrow_params"] = ok_n[0]["total_params"]
            row["narrow_widths"] = ok_n[0]["widths"]
            row["narrow_test_accuracy"] = _mean(r["test_accuracy"] for r in ok_n)
            row["narrow_size"] = _mean(r.get(size) for r in ok_n)
            verdict, delta, low, high = stats.verdict(
                [r["test_accuracy"] for r in ok_p], [r["test_accuracy"] for r in ok_n], study.tie_margin
            )
            row.update(verdict=verdict, delta=delta, delta_ci_low=low, delta_ci_high=high)
            row["note"] = ok_n[0].get("note", "") or ""
        rows.append(row)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def frontier_frame(records, size="nonzero_params"):
    ok = [r for r in records if r.get("status") == "ok"]
    groups = {}
    for r in ok:
        point = (r["arm"], r.get("pruning", ""), r.get("target_sparsity", 0.0), r["widths"])
        groups.setdefault(point, []).append(r)
    rows = []
    for (arm, variant, target, widths), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        s = stats.summary([r["test_accuracy"] for r in rs])
        row = {"arm": arm, "pruning": variant, "target_sparsity": target, "widths": widths}
        row.update(s)
        for column in SIZE_AXES:
            row[column] = _mean(r.get(column) for r in rs)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["pareto"] = stats.pareto_flags(frame[size], frame["mean"])
    return frame


def _mean(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(sum(values) / len(values)) if values else float("nan")


def verdict_sentence(comparison):
    counts = comparison["verdict"].value_counts().to_dict()
    compared = sum(counts.get(k, 0) for k in ("pruned", "narrow", "tie"))
    if not compared:
        return "No size point has both arms trained yet."
    parts = [f"large-sparse beat small-dense at {counts.get('pruned', 0)} of {compared} sizes"]
    extra = []
    if counts.get("narrow"):
        extra.append(f"small-dense won {counts['narrow']}")
    if counts.get("tie"):
        extra.append(f"{counts['tie']} tie{'s' if counts['tie'] > 1 else ''}")
    if counts.get("no-narrow-fits"):
        extra.append(f"{counts['no-narrow-fits']} with no dense model small enough")
    if extra:
        parts.append(f"({', '.join(extra)})")
    return " ".join(parts)


_HEADERS = ("sparsity", "nonzeros", "narrow", "pruned acc", "narrow acc", "delta", "95% CI", "verdict")


def _cells(r):
    """One comparison row as text cells, shared by the terminal table and report.md."""
    ci = f"[{r.delta_ci_low:+.4f}, {r.delta_ci_high:+.4f}]" if math.isfinite(r.delta_ci_low) else "n/a"
    return [f"{r.target_sparsity:g}", _int(r.pruned_nonzero_params), _int(r.narrow_params),
            _pct(r.pruned_test_accuracy), _pct(r.narrow_test_accuracy), _signed(r.delta), ci, r.verdict]


def comparison_text(comparison):
    rows = [list(_HEADERS)] + [_cells(r) for _, r in comparison.iterrows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    return "\n".join(
        "  ".join(cell.rjust(w) if i < len(_HEADERS) - 1 else cell for i, (cell, w) in enumerate(zip(row, widths)))
        for row in rows
    )


def _int(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{int(v)}"


def _pct(v):
    return "" if isinstance(v, float) and math.isnan(v) else f"{100 * v:.2f}%"


def _signed(v):
    return "" if isinstance(v, float) and math.isnan(v) else f"{v:+.4f}"


def write_reports(root, size="nonzero_params", stream=None, plots=True):
    """Regenerates every table and figure of a study folder from its records.

    Returns:
        ``(runs, comparison, frontier, failures)``: the three DataFrames and
        the list of failed records.
    """
    stream = stream or sys.stdout
    if size not in SIZE_AXES:
        raise ResultsError(f"size: Expected one of {list(SIZE_AXES)}. Received: size={size!r}")
    study = results.load_study(root)
    records, survey = collect(root, study)
    runs = runs_frame(records)
    comparison = comparison_frame(study, records, survey, size)
    frontier = frontier_frame(records, size)
    failures = [r for r in records if r.get("status") == "failed"]
    storing.write_csv(storing.table(root, "runs.csv"), runs)
    storing.write_csv(storing.table(root, "comparison.csv"), comparison)
    storing.write_csv(storing.table(root, "frontier.csv"), frontier)
    sentence = verdict_sentence(comparison)
    if plots and not frontier.empty:
        from widthvsprune import plotting

        plotting.frontier_figure(study, runs, frontier, comparison, size, root)
    storing.write_bytes(
        storing.table(root, "report.md"),
        markdown(study, comparison, sentence, failures, size).encode(),
    )
    print(f"\nruns.csv:       {storing.table(root, 'runs.csv')} ({len(runs)} models)", file=stream)
    print(f"comparison.csv: {storing.table(root, 'comparison.csv')}", file=stream)
    print("\n" + comparison_text(comparison), file=stream)
    print(f"\n{sentence}.", file=stream)
    if failures:
        print(f"\n{len(failures)} run(s) failed (retried on the next run):", file=stream)
        for r in failures:
            print(f"  {r.get('label', r.get('arm'))}: {r.get('error')}", file=stream)
    return runs, comparison, frontier, failures


def markdown(study, comparison, sentence, failures, size):
    fair = " (the pruned arm's total)" if study.narrow.epochs is None else ""
    lines = [
        f"# {study.name}: large-sparse versus small-dense",
        "",
        f"Family `{study.family}` (wide widths {'x'.join(map(str, study.widths))}) on `{study.dataset}`, "
        f"{len(study.seeds)} seed(s), {study.pruning.variant} magnitude pruning to "
        f"{', '.join(f'{s:g}' for s in study.sparsities)} sparsity. Each narrow model is a dense "
        f"model of the same family with no more parameters than the pruned model's nonzeros, its "
        f"shape and learning rate chosen by {study.narrow.oracle} search over "
        f"{study.narrow.max_trials} trials on the validation split, trained for "
        f"{study.narrow_epochs} epochs{fair}.",
        "",
        f"**{sentence}.**",
        "",
        "| sparsity | pruned nonzeros | narrow params | pruned test acc | narrow test acc | delta | 95% CI | verdict |",
        "|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for _, r in comparison.iterrows()]
    lines += [
        "",
        "Accuracies are means over seeds. `delta` is pruned minus narrow. The verdict names a "
        "winner only when the 95% Welch interval of `delta` excludes zero; with a single seed a "
        f"difference within {study.tie_margin:g} is a tie.",
    ]
    if size != "nonzero_params":
        lines.append(f"Sizes in the figure and the size columns are `{size}`.")
    if failures:
        lines += ["", f"{len(failures)} run(s) failed and are not in the table."]
    return "\n".join(lines) + "\n"
