"""Tables, figures and the verdict, derived from the run records alone.

Everything written here can be regenerated at any time with
``widthvsprune report DIR``: ``runs.csv`` (one row per trained model),
``comparison.csv`` (one row per contrast and size point),
``frontier.csv`` (one row per arm and size point), ``frontier.png`` /
``frontier.svg`` and ``report.md``. No framework is imported.
"""

import math
import sys

from widthvsprune import arms, store
from widthvsprune.analysis import compare
from widthvsprune.analysis.tables import tables


def write_reports(root, size="nonzero_params", stream=None, plots=True):
    """Regenerates every table and figure of a study folder from its records, and prints the verdict.

    Returns:
        A :class:`widthvsprune.analysis.tables.Results`.
    """
    stream = stream or sys.stdout
    made = tables(root, size)
    found, failures, warnings, compute = made.results, made.failures, made.warnings, made.compute
    study, runs, comparison, frontier = found.study, found.runs, found.comparison, found.frontier
    store.write_csv(store.table(root, "runs.csv"), runs)
    store.write_csv(store.table(root, "comparison.csv"), comparison)
    store.write_csv(store.table(root, "frontier.csv"), frontier)
    if plots and not frontier.empty:
        from widthvsprune.analysis import plots as figures

        figures.frontier_figure(study, frontier, comparison, size, root)
    store.write_bytes(store.table(root, "report.md"),
                      markdown(study, comparison, compute, warnings, failures, size).encode())
    print(f"\nruns.csv:       {store.table(root, 'runs.csv')} ({len(runs)} models)", file=stream)
    print(f"comparison.csv: {store.table(root, 'comparison.csv')}", file=stream)
    print("\n" + text(study, comparison, compute, warnings), file=stream)
    if failures:
        print(f"\n{len(failures)} run(s) failed (retried on the next run):", file=stream)
        for r in failures:
            print(f"  {r.get('label', r.get('arm'))}: {r.get('error')}", file=stream)
    return found


# --------------------------------------------------------------------------
# Text.

def _headers(contrast):
    arm, opponent = contrast.arm, contrast.opponent
    return ["sparsity", "nonzeros", opponent, "fill", f"{arm} acc", f"{opponent} acc", "delta", "CI", "verdict"]


def _cells(r):
    """One comparison row as text cells, shared by the terminal table and report.md."""
    ci = f"[{r.delta_ci_low:+.4f}, {r.delta_ci_high:+.4f}]" if math.isfinite(r.delta_ci_low) else "n/a"
    fill = f"{r.opponent_fill:.0%}" if math.isfinite(r.opponent_fill) else ""
    return [f"{r.target_sparsity:g}", _int(r.arm_nonzero_params), _int(r.opponent_params), fill,
            _pct(r.arm_test_accuracy), _pct(r.opponent_test_accuracy), _signed(r.delta), ci, r.verdict]


def _aligned(rows, left_first=False):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    last = len(rows[0]) - 1

    def fit(i, cell, w):
        return cell.ljust(w) if i == 0 and left_first else cell if i == last else cell.rjust(w)

    return "\n".join("  ".join(fit(i, cell, w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def comparison_text(comparison, contrast):
    rows = comparison[comparison.contrast == contrast.name]
    level = rows.ci_level.dropna()
    headers = _headers(contrast)
    headers[7] = f"{level.iloc[0]:.2%} CI" if len(level) else "CI"
    return _aligned([headers] + [_cells(r) for _, r in rows.iterrows()])


def grid(study, comparison):
    """The 2x2 table of verdict counts of the headline's tunings: rows the arm's tuning, columns the opponent's."""
    head = arms.headline(study)
    counts = compare.tally(comparison)
    by_tunings = {(c.arm_tuning, c.opponent_tuning): c.name for c in arms.contrasts(study)
                  if c.headline or c.control_of == head.name}

    def cell(a, o):
        c = counts.get(by_tunings.get((a, o)))
        if c is None:
            return "-"
        return (f"{c.get(head.arm, 0)} / {c.get(head.opponent, 0)} / {c.get(compare.TIE, 0)}"
                + (f" (+{c[compare.UNDERFILLED]} inconclusive)" if c.get(compare.UNDERFILLED) else ""))

    rows = [["", f"{head.opponent} tuned", f"{head.opponent} untuned"]]
    rows += [[f"{head.arm} {a}", cell(a, "tuned"), cell(a, "untuned")] for a in ("tuned", "untuned")]
    return rows


def compute_rows(compute):
    rows = [["arm", "searches", "trials", "epochs", "seconds"]]
    rows += [[r.arm, str(r.searches), str(r.trials), f"{r.epochs:.0f}", f"{r.seconds:.1f}"]
             for r in compute.itertuples()]
    return rows


def text(study, comparison, compute, warnings):
    """What ``run`` and ``report`` print: the headline table and verdict, the 2x2 table, the search compute."""
    head = arms.headline(study)
    out = [f"{head.name} (each arm tuned with {study.tuning.trials} {study.tuning.oracle} trials per search):",
           comparison_text(comparison, head), "", compare.sentence(comparison, head.name) + "."]
    if any(c.control_of == head.name for c in arms.contrasts(study)) and len(set(comparison.contrast)) > 1:
        out += ["", f"Verdicts by tuning, {head.arm} wins / {head.opponent} wins / ties over the size points:",
                _aligned(grid(study, comparison), left_first=True)]
    for contrast in arms.contrasts(study):
        if not contrast.headline and contrast.control_of is None and (comparison.contrast == contrast.name).any():
            out += ["", f"{contrast.name}:", comparison_text(comparison, contrast), "",
                    compare.sentence(comparison, contrast.name) + "."]
    out += ["", "Search compute per arm (the pruned arm also starts from the baseline search):",
            _aligned(compute_rows(compute), left_first=True)]
    detectable = _detectable(comparison, head.name)
    if detectable:
        out += ["", f"With {len(study.seeds)} seed(s) and this test set, the smallest difference this study could "
                f"detect (80% power, corrected) is {detectable}; below min_effect={study.min_effect:g} no difference "
                "names a winner."]
    if warnings:
        out += ["", "Warnings:"] + [f"- {w}" for w in warnings]
    return "\n".join(out)


def _detectable(comparison, contrast):
    """The smallest detectable difference of the headline's size points, as text (a range when they differ)."""
    values = comparison[comparison.contrast == contrast].detectable.dropna()
    if values.empty:
        return ""
    low, high = float(values.min()), float(values.max())
    return f"{low:.1%}" if round(low, 3) == round(high, 3) else f"{low:.1%} to {high:.1%} across the size points"


def _int(v):
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{int(v)}"


def _pct(v):
    return "" if isinstance(v, float) and math.isnan(v) else f"{100 * v:.2f}%"


def _signed(v):
    return "" if isinstance(v, float) and math.isnan(v) else f"{v:+.4f}"


def _md_table(rows):
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + [
        "| " + " | ".join(row) + " |" for row in rows[1:]]


def markdown(study, comparison, compute, warnings, failures, size):
    t, head = study.tuning, arms.headline(study)
    lines = [
        f"# {study.name}: large-sparse versus small-dense",
        "",
        f"Family `{study.family}` (wide widths {'x'.join(map(str, study.widths))}) on `{study.dataset}`, "
        f"{len(study.seeds)} evaluation seed(s), pruned to {', '.join(f'{s:g}' for s in study.sparsities)} sparsity. "
        f"Each arm is tuned by a {t.oracle} search of {t.trials} trials on the validation split, with search seed "
        f"{study.search_seed} (never an evaluation seed): the baseline's learning rate; per size point the pruned "
        "arm's fine-tune learning rate, schedule and spread of sparsity over layers, and the narrow arm's learning "
        "rate and split of width. A narrow model has no more parameters than the fewest nonzeros of the pruned "
        "models at its size point, and trains for as many optimizer steps as they did in all.",
        "",
        f"**{compare.sentence(comparison, head.name)}.**",
        "",
    ]
    for contrast in arms.contrasts(study):
        rows = comparison[comparison.contrast == contrast.name]
        if rows.empty:
            continue
        lines += [f"## {contrast.name}", ""]
        lines += _md_table([_headers(contrast)] + [_cells(r) for _, r in rows.iterrows()]) + [""]
    if len(set(comparison.contrast)) > 1:
        lines += ["## Verdicts by tuning", "", f"{head.arm.capitalize()} wins / {head.opponent} wins / ties over the "
                  "size points.", ""]
        lines += _md_table(grid(study, comparison)) + [""]
    lines += ["## Search compute per arm", ""] + _md_table(compute_rows(compute)) + [""]
    detectable = _detectable(comparison, head.name)
    lines += [
        "## How the verdict is made",
        "",
        "Accuracies are means over seeds; `delta` is pruned minus narrow. The interval counts the seeds' spread and "
        "the finite test set's sampling error (binomial, both arms counted as independent, which is conservative), "
        f"with Bonferroni's correction over the {len(study.sparsities)} size points, and is cut to [-1, 1]. A side "
        f"wins only when the interval excludes zero and |delta| >= min_effect = {study.min_effect:g}. A pruned win "
        "over a narrow model that fills less than 90% of its budget is `inconclusive-underfilled`.",
    ]
    if detectable:
        lines.append(f"The smallest difference this study could detect with its seeds and test set (80% power, "
                     f"corrected) is {detectable}.")
    if size != "nonzero_params":
        lines.append(f"Sizes in the figure and the size columns are `{size}`.")
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    if failures:
        lines += ["", f"{len(failures)} run(s) failed and are not in the tables."]
    return "\n".join(lines) + "\n"
