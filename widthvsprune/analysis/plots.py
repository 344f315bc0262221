"""The figures: test accuracy against size, one line per arm, and the headline's difference under it.

:func:`frontier_figure` writes a study's ``frontier.png`` / ``.svg`` /
``.pdf``: on top the arms' mean test accuracy against size (log axis,
labelled ticks, each size point's target sparsity on a top axis), the
headline's arm as a light band of its 95% interval, the other tuned arms
with error bars, the untuned controls dashed without intervals, the
baselines as horizontal lines (tuned solid with its band, untuned dotted)
and the tolerance line under the tuned one; under it the headline's
difference (arm minus opponent, percentage points) with its corrected
interval and a zero line. :func:`summary_figure` draws one small frontier
panel per study.
"""

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker, transforms  # noqa: E402

from widthvsprune import arms, store  # noqa: E402

_LABELS = {
    "nonzero_params": "nonzero parameters",
    "total_params": "parameters (dense count)",
    "dense_bytes": "dense float32 storage (bytes)",
    "sparse_bytes": "sparse storage (bytes)",
    "gzip_bytes": "gzipped weights (bytes)",
    "flops": "multiply-adds per example",
    "nonzero_flops": "nonzero multiply-adds per example",
}
FORMATS = ("png", "svg", "pdf")


def _short(value, _=None):
    """A size as a short tick label: 500, 2k, 15k, 1.2M."""
    if value <= 0:
        return ""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            text = f"{value / scale:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:.0f}"


def log_axis(ax, low, high):
    """A log x axis from ``low`` to ``high`` with ticks at 1, 2 and 5 of each decade (also 3 and 7 when the range
    spans less than a decade and a half), labelled ``2k``, ``5k``, ``10k`` ..."""
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    subs = (1.0, 2.0, 5.0) if math.log10(high / low) > 1.5 else (1.0, 2.0, 3.0, 5.0, 7.0)
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_short))
    ax.xaxis.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(range(1, 10))))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _label(arm, tuning, group, allocations=True):
    """The legend entry of an arm's line; ``allocations``: name the pruning methods its models used."""
    label = (arm.legend or arm.title) + ("" if tuning == "tuned" else ", untuned")
    variants = sorted(v for v in set(group.pruning) if isinstance(v, str) and v) if allocations else []
    return label + (f" ({'/'.join(variants)})" if variants else "")


def _role(frame):
    return frame.role.fillna("eval") if "role" in frame else frame.arm.map(lambda _: "eval")


def draw_frontier(ax, study, frontier, size, tolerance=None, compact=False):
    """Draws a study's frontier on ``ax``; returns the x range its points cover.

    ``compact``: a panel of a figure of several studies: tuned arms only, and
    legend entries that hold for every panel (no allocation names).
    """
    head = arms.headline(study)
    sizes = []
    for (name, tuning), group in frontier.groupby(["arm", "tuning"], sort=False):
        arm = arms.get(name)
        if arm.reference or (compact and tuning != "tuned"):
            continue
        roles = _role(group)
        main, above = group[roles != "bracket"].sort_values(size), group[roles == "bracket"]
        sizes += list(group[size])
        y, low, high = 100 * main["mean"], 100 * main["ci_low"], 100 * main["ci_high"]
        if tuning != "tuned":
            ax.plot(main[size], y, marker=arm.marker, color=arm.color, linestyle="--", linewidth=1, markersize=4,
                    alpha=0.55, label=_label(arm, tuning, group))
        elif name == head.arm:
            ax.plot(main[size], y, marker=arm.marker, color=arm.color, linewidth=1.8, markersize=5,
                    label=_label(arm, tuning, group, allocations=not compact), zorder=3)
            if low.notna().any():
                ax.fill_between(main[size], low, high, color=arm.color, alpha=0.12, linewidth=0, zorder=1)
        else:
            errors = [(y - low).clip(lower=0).fillna(0), (high - y).clip(lower=0).fillna(0)]
            ax.errorbar(main[size], y, yerr=errors, marker=arm.marker, color=arm.color, linewidth=1.8, markersize=5,
                        capsize=3, elinewidth=1, label=_label(arm, tuning, group, allocations=not compact), zorder=4)
        if tuning == "tuned" and len(above):
            ax.plot(above[size], 100 * above["mean"], marker=arm.marker, color=arm.color, linestyle="none",
                    markerfacecolor="white", markersize=6, zorder=4, label=f"{arm.title}, above the budget")
    _baselines(ax, frontier, size, study, tolerance, compact)
    sizes += list(frontier[size])
    return min(sizes), max(sizes)


def _baselines(ax, frontier, size, study, tolerance, compact):
    """The baselines as horizontal lines (tuned: a wide light line with its band; untuned: a thin dotted line, so
    that both show where they coincide) and as markers side by side at their size; the tolerance line."""
    for (name, tuning), group in frontier.groupby(["arm", "tuning"], sort=False):
        arm = arms.get(name)
        if not arm.reference or (compact and tuning != "tuned"):
            continue
        row = group.iloc[0]
        tuned = tuning == "tuned"
        label = f"{arm.legend or arm.title}{'' if tuned else ', untuned'}: {100 * row['mean']:.2f}%"
        if tuned:
            ax.axhline(100 * row["mean"], color=arm.color, linewidth=3, alpha=0.3, zorder=0, label=label)
        else:
            ax.axhline(100 * row["mean"], color=arm.color, linewidth=1, linestyle=":", zorder=1, label=label)
        # Side by side at the same size: the untuned marker is drawn a few points to the right.
        shift = transforms.offset_copy(ax.transData, fig=ax.figure, x=0 if tuned else 9, units="points")
        ax.plot([row[size]], [100 * row["mean"]], marker=arm.marker if tuned else "D", color=arm.color,
                linestyle="none", markersize=10 if tuned else 6, markerfacecolor=arm.color if tuned else "white",
                zorder=5, transform=shift, label=label)  # one legend entry with its line (merged_legend)
        if tuned and math.isfinite(row["ci_low"]):
            ax.axhspan(100 * row["ci_low"], 100 * row["ci_high"], color=arm.color, alpha=0.06, linewidth=0,
                       zorder=0)
        if tuned and tolerance is not None and len(tolerance):
            level = 100 * (row["mean"] - float(tolerance.tolerance.iloc[0]))
            ax.axhline(level, color="gray", linewidth=0.9, linestyle="-.", zorder=0,
                       label=f"tolerance: dense reference - {100 * float(tolerance.tolerance.iloc[0]):g} pt")


def _sparsity_axis(ax, frontier, study, size):
    """A top axis marking each size point of the headline's arm with its target sparsity."""
    head = arms.headline(study)
    points = arms.rows(frontier, head.arm, head.arm_tuning)
    points = points[_role(points) == "eval"]
    if points.empty or points[size].nunique() < len(points):
        return  # on an axis where the arm's sizes coincide (dense storage, dense FLOPs) there is nothing to mark
    top = ax.secondary_xaxis("top")
    top.xaxis.set_major_locator(ticker.FixedLocator(list(points[size])))
    top.xaxis.set_major_formatter(ticker.FixedFormatter([f"{t:.0%}" for t in points.target_sparsity]))
    top.xaxis.set_minor_locator(ticker.NullLocator())
    top.tick_params(labelsize=8)
    top.set_xlabel(f"target sparsity of each size point ({arms.get(head.arm).title} sizes)", fontsize=8)


def _difference(ax, study, comparison, size):
    """The headline's difference per size point, with its corrected interval and a zero line."""
    head = arms.headline(study)
    rows = comparison[(comparison.contrast == head.name) & comparison.delta.notna()]
    arm, opponent = arms.get(head.arm), arms.get(head.opponent)
    ax.axhline(0, color="black", linewidth=0.8)
    effect = 100 * study.min_effect
    ax.axhspan(-effect, effect, color="gray", alpha=0.12, linewidth=0,
               label=f"|difference| < min_effect ({effect:g} pt)")
    colors = {arm.name: arm.color, opponent.name: opponent.color}
    for r in rows.itertuples():
        y = 100 * r.delta
        below, above = max(0.0, y - 100 * r.delta_ci_low), max(0.0, 100 * r.delta_ci_high - y)
        ax.errorbar([r.arm_size], [y], yerr=[[below], [above]], marker="o", color=colors.get(r.verdict, "dimgray"),
                    capsize=3, markersize=4, linestyle="none")
    bracketed = rows[rows.above_delta.notna()] if "above_delta" in rows else rows.iloc[:0]
    if len(bracketed):
        shift = transforms.offset_copy(ax.transData, fig=ax.figure, x=7, units="points")
        ax.plot(bracketed.arm_size, 100 * bracketed.above_delta, marker="o", markerfacecolor="white", color="dimgray",
                linestyle="none", markersize=4, transform=shift, label=f"against the {opponent.title} model above "
                "the budget")
    if len(rows):
        ax.plot(rows.arm_size, 100 * rows.delta, color="dimgray", linewidth=0.8, alpha=0.6)
        level = rows.ci_level.iloc[0]
        ax.set_title(f"{arm.title} minus {opponent.title} ({head.name}), {level:.2%} intervals (Bonferroni); "
                     f"colour: the winner, gray: no winner", fontsize=8)
    ax.set_ylabel("difference (points)", fontsize=9)
    # Beside the panel, as the upper panel's: a legend inside it can hide a size point.
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    ax.grid(True, which="major", alpha=0.3)


def merged_legend(ax):
    """``(handles, labels)`` of ``ax``'s legend, the artists that share a label in one entry (a baseline's line and
    its marker)."""
    handles, labels = ax.get_legend_handles_labels()
    merged = {}
    for handle, label in zip(handles, labels):
        merged.setdefault(label, []).append(handle)
    return [tuple(h) if len(h) > 1 else h[0] for h in merged.values()], list(merged)


def _legend_rank(label):
    """Legend order: tuned arms, untuned controls, models above a budget, baselines (tuned first), tolerance; by
    name within each."""
    group = 3 if "tolerance" in label else 2 if "baseline" in label else 1 if "above" in label else 0
    return group, "untuned" in label, label


def frontier_figure(study, frontier, comparison, size, root, tolerance=None):
    """Writes ``frontier.png``, ``frontier.svg`` and ``frontier.pdf`` into ``root``.

    Args:
        study: the study.
        frontier: ``frontier.csv``'s table.
        comparison: ``comparison.csv``'s table.
        size: the size axis.
        root: the study folder.
        tolerance: ``tolerance.csv``'s table (draws the tolerance line), or ``None``.
    """
    fig = draw_frontier_figure(study, frontier, comparison, size, tolerance)
    for fmt in FORMATS:
        store.write_bytes(store.table(root, f"frontier.{fmt}"), render(fig, fmt))
    plt.close(fig)


def draw_frontier_figure(study, frontier, comparison, size, tolerance=None):
    """The study's figure (the frontier above, the headline's difference below), not written anywhere."""
    fig, (ax, dx) = plt.subplots(2, 1, sharex=True, figsize=(10.5, 7.2), dpi=120,
                                 gridspec_kw={"height_ratios": [3, 1.25], "hspace": 0.1})
    low, high = draw_frontier(ax, study, frontier, size, tolerance)
    log_axis(ax, low / 1.25, high * 1.35)
    _sparsity_axis(ax, frontier, study, size)
    ax.set_ylabel("test accuracy (%), mean over seeds")
    fig.suptitle(f"{study.name}: {study.family} on {study.dataset}, {len(study.seeds)} seed(s); bands and bars: 95% "
                 "interval of the mean", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = merged_legend(ax)
    order = sorted(range(len(labels)), key=lambda i: _legend_rank(labels[i]))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper left", bbox_to_anchor=(1.02, 1.0),
              fontsize=7.5, frameon=False)
    _difference(dx, study, comparison, size)
    dx.set_xlabel(f"{_LABELS.get(size, size)} (log scale)")
    dx.tick_params(axis="x", which="major", labelbottom=True)
    fig.subplots_adjust(left=0.08, right=0.7, top=0.87, bottom=0.08)
    return fig


def summary_figure(studies, out, size="nonzero_params"):
    """Writes ``summary.png`` / ``.svg`` / ``.pdf`` into ``out``: one small frontier panel per study.

    Args:
        studies: ``(study, frontier, tolerance)`` per study.
        out: the folder.
        size: the size axis.
    """
    n = len(studies)
    columns = min(3, n)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), dpi=120, squeeze=False)
    for ax, (study, frontier, tolerance) in zip(axes.flat, studies):
        low, high = draw_frontier(ax, study, frontier, size, tolerance, compact=True)
        log_axis(ax, low / 1.25, high * 1.25)
        ax.set_title(f"{study.name}: {study.family} on {study.dataset}", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlabel(_LABELS.get(size, size), fontsize=8)
        ax.set_ylabel("test accuracy (%)", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    handles, labels = merged_legend(axes.flat[0])
    keep = [(h, lab.split(":")[0]) for h, lab in zip(handles, labels)]
    fig.legend([h for h, _ in keep], [lab for _, lab in keep], loc="lower center", ncol=min(4, len(keep)),
               fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    for fmt in FORMATS:
        store.write_bytes(store.table(out, f"summary.{fmt}"), render(fig, fmt))
    plt.close(fig)


def render(fig, fmt):
    """The figure's bytes in ``fmt``, without a creation date (the same figure gives the same bytes)."""
    buffer = io.BytesIO()
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt)
    fig.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()
