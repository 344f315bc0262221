"""The frontier figure: test accuracy versus size, one line per arm."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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


def frontier_figure(study, frontier, comparison, size, root):
    """Writes ``frontier.png`` and ``frontier.svg`` into ``root``: tuned arms solid, untuned controls dashed."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for (name, tuning), group in frontier.groupby(["arm", "tuning"], sort=False):
        group = group.sort_values(size)
        arm = arms.get(name)
        color, marker = arm.color, arm.marker
        label = (arm.legend or arm.title) + ("" if tuning == "tuned" else ", untuned")
        variants = sorted(v for v in set(group.pruning) if isinstance(v, str) and v)
        if variants:
            label += f" ({'/'.join(variants)})"
        dense = arm.reference  # drawn as points: the wide model
        ax.plot(group[size], 100 * group["mean"], marker=marker, color=color, label=label,
                linestyle="none" if dense else ("-" if tuning == "tuned" else "--"), markersize=8 if dense else 5,
                alpha=1.0 if tuning == "tuned" else 0.6)
        low, high = group["ci_low"], group["ci_high"]
        if low.notna().any() and tuning == "tuned":
            ax.fill_between(group[size], 100 * low, 100 * high, color=color, alpha=0.15, linewidth=0)
    # The headline's matched pairs: a thin line from each pruned point to its narrow opponent.
    for _, row in comparison[comparison.contrast == arms.headline(study).name].iterrows():
        if all(math.isfinite(v) for v in (row.arm_size, row.opponent_size,
                                           row.arm_test_accuracy, row.opponent_test_accuracy)):
            ax.plot([row.arm_size, row.opponent_size],
                    [100 * row.arm_test_accuracy, 100 * row.opponent_test_accuracy],
                    color="gray", linewidth=0.8, linestyle=":", zorder=0)
    ax.set_xscale("log")
    ax.set_xlabel(f"{_LABELS.get(size, size)} (log scale)")
    ax.set_ylabel("test accuracy (%), mean over seeds")
    ax.set_title(f"{study.name}: {study.family} on {study.dataset}, {len(study.seeds)} seed(s), 95% CI bands")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    store.write_bytes(store.table(root, "frontier.png"), _render(fig, "png"))
    store.write_bytes(store.table(root, "frontier.svg"), _render(fig, "svg"))
    plt.close(fig)


def _render(fig, fmt):
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()
