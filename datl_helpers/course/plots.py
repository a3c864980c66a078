"""Figures the notebooks draw (matplotlib and seaborn). Each function returns its Figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _label_axes(ax, xlabel: str, value: str, title: str) -> None:
    """Axis labels ("test accuracy" for ``target_accuracy``), title and a light grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy" if value == "target_accuracy" else value)
    ax.set_title(title)
    ax.grid(alpha=0.3)


def as_image_grid(x: torch.Tensor, ncol: int) -> np.ndarray:
    """uint8 images N x 3 x H x W as one H*rows x W*ncol x 3 array (1-pixel white gutters)."""
    from torchvision.utils import make_grid

    grid = make_grid(x.float() / 255.0, nrow=ncol, padding=1, pad_value=1.0)
    return grid.permute(1, 2, 0).clamp(0, 1).numpy()


def show_images(x: torch.Tensor, ncol: int = 10, title: str | None = None, scale: float = 0.6):
    """A grid of uint8 images."""
    plt = _plt()
    rows = max(1, int(np.ceil(len(x) / ncol)))
    fig, ax = plt.subplots(figsize=(ncol * scale + 0.4, rows * scale + 0.6))
    ax.imshow(as_image_grid(x, ncol), interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def domain_gallery(examples: Mapping[str, torch.Tensor], ncol: int = 10, scale: float = 0.6):
    """One row block per domain, e.g. the output of :func:`datl_helpers.course.widgets.examples_per_class`."""
    plt = _plt()
    names = list(examples)
    heights = [max(1, int(np.ceil(len(examples[n]) / ncol))) for n in names]
    fig, axes = plt.subplots(
        len(names), 1, figsize=(ncol * scale + 1.2, sum(heights) * scale + 0.4 * len(names)),
        gridspec_kw={"height_ratios": heights}, squeeze=False,
    )
    for ax, name in zip(axes[:, 0], names):
        ax.imshow(as_image_grid(examples[name], ncol), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=11)
    fig.tight_layout()
    return fig


def pixel_histograms(stats: Mapping[str, np.ndarray], bins: int = 32):
    """Histogram of pixel brightness for every domain (``stats``: name -> brightness samples in [0, 1])."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.concat(
        [pd.DataFrame({"brightness": v, "domain": k}) for k, v in stats.items()], ignore_index=True
    )
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.histplot(frame, x="brightness", hue="domain", bins=bins, stat="density", common_norm=False,
                 element="step", fill=False, ax=ax)
    ax.set_yscale("log")  # grey digit domains are mostly black pixels: a log scale shows the rest
    ax.set_title("pixel brightness by domain")
    fig.tight_layout()
    return fig


def embedding_scatter(
    points: np.ndarray,
    hue: Sequence,
    title: str = "",
    style: Sequence | None = None,
    legend_title: str = "",
    hue_order: Sequence | None = None,
):
    """A 2-D embedding (N x 2) coloured by ``hue`` (for example the domain of each point).

    The legend follows ``hue_order`` (default: the order in which values first appear)."""
    import seaborn as sns

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5))
    hue = list(hue)
    sns.scatterplot(x=points[:, 0], y=points[:, 1], hue=hue, hue_order=hue_order or list(dict.fromkeys(hue)),
                    style=None if style is None else list(style), s=12, alpha=0.7, linewidth=0, ax=ax)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.legend(title=legend_title, fontsize=8, markerscale=1.5, loc="best")
    fig.tight_layout()
    return fig


def confusion_heatmap(cm: np.ndarray, title: str = "confusion matrix", normalize: bool = True):
    """A confusion matrix (rows: true class, columns: predicted class) as a heatmap."""
    import seaborn as sns

    plt = _plt()
    cm = np.asarray(cm, dtype=float)
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    sns.heatmap(shown, annot=True, fmt=".2f" if normalize else ".0f", cmap="Blues", cbar=False,
                annot_kws={"fontsize": 7}, ax=ax, vmin=0, vmax=1 if normalize else None)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def bar_by_domain(values: Mapping[str, float], title: str, ylabel: str = "accuracy", reference: float | None = None):
    """One bar per domain, with its value written on it."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(values)
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"][: len(names)]
    bars = ax.bar(names, [values[n] for n in names], color=colours)
    for bar, name in zip(bars, names):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01, f"{values[name]:.1%}",
                ha="center", fontsize=9)
    if reference is not None:
        ax.axhline(reference, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def history_curves(history, keys: Sequence[str] = ("train_loss", "val_loss"), title: str = ""):
    """Per-epoch curves of a :class:`datl_helpers.core.train.History`."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key in keys:
        values = history[key]
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    return fig


def label_efficiency_curves(rows: Sequence[dict], value: str = "target_accuracy"):
    """Accuracy against labels per class, one line per method (mean, band = ± 1 std over seeds),
    one panel per target."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.DataFrame(rows)
    frame["labels per class"] = frame["labels_per_class"].astype(str)
    order = list(dict.fromkeys(frame["labels per class"]))
    targets = list(dict.fromkeys(frame["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(5.2 * len(targets), 3.8), squeeze=False, sharey=True)
    for ax, target in zip(axes[0], targets):
        part = frame[frame["target"] == target].copy()
        part["x"] = part["labels per class"].map({k: i for i, k in enumerate(order)})
        sns.lineplot(part, x="x", y=value, hue="method", errorbar="sd", marker="o", ax=ax)
        ax.set_xticks(range(len(order)), order)
        _label_axes(ax, "labelled images per class", value, target)
    fig.tight_layout()
    return fig


def grouped_bars(rows: Sequence[dict], x: str, value: str = "accuracy", hue: str | None = None, title: str = ""):
    """Mean ± std bars of ``value`` for each ``x`` (and ``hue``) over the rows (one per seed)."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.barplot(pd.DataFrame(rows), x=x, y=value, hue=hue, errorbar="sd", ax=ax)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    return fig


def augmentation_heatmaps(rows: Sequence[dict], value: str = "target_accuracy", title: str = ""):
    """Mean ``value`` in percent over seeds: methods (rows) by augmentation (columns), one panel per
    number of labels per class. ``rows`` as from :func:`datl_helpers.transfer.experiments.augmentation_runs`."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.DataFrame(rows)
    counts = list(dict.fromkeys(frame["labels_per_class"]))
    augments = list(dict.fromkeys(frame["augment"]))
    methods = list(dict.fromkeys(frame["method"]))
    fig, axes = plt.subplots(1, len(counts), figsize=(3.3 * len(counts) + 1.0, 2.9), squeeze=False)
    for i, (ax, k) in enumerate(zip(axes[0], counts)):
        table = (100 * frame[frame["labels_per_class"] == k]
                 .pivot_table(index="method", columns="augment", values=value))
        sns.heatmap(table.loc[methods, augments], annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100,
                    cbar=False, ax=ax, annot_kws={"fontsize": 8})
        ax.set_title(f"{k} labels/class")
        ax.set_xlabel("augmentation")
        ax.set_ylabel("")
        ax.tick_params(axis="y", labelrotation=0)
        if i:
            ax.set_yticklabels([])
    fig.suptitle(title or f"mean {value} (%) on un-augmented test images")
    fig.tight_layout()
    return fig


def augmentation_lines(rows: Sequence[dict], value: str = "target_accuracy", x: str = "augment", title: str = ""):
    """``value`` against ``x`` (the preset, or the numeric ``strength``), one line per method with
    ± 1 std error bars over seeds, one panel per number of labels per class."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.DataFrame(rows)
    counts = list(dict.fromkeys(frame["labels_per_class"]))
    fig, axes = plt.subplots(1, len(counts), figsize=(4.2 * len(counts), 3.4), squeeze=False, sharey=True)
    for ax, k in zip(axes[0], counts):
        part = frame[frame["labels_per_class"] == k]
        sns.lineplot(part, x=x, y=value, hue="method", errorbar="sd", err_style="bars", marker="o", ax=ax,
                     sort=x == "strength")
        _label_axes(ax, "augmentation" if x == "augment" else x, value, f"{k} labels/class")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def gain_bars(gains: Sequence[dict], title: str = ""):
    """Paired gains over no augmentation (percentage points, ± 1 std over seeds): one panel per
    augmentation, labels per class on the x axis, one bar per method.
    ``gains`` as from :func:`datl_helpers.transfer.augment.gain_rows`."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.DataFrame(gains)
    frame["labels per class"] = frame["labels_per_class"].astype(str)
    augments = list(dict.fromkeys(frame["augment"]))
    fig, axes = plt.subplots(1, len(augments), figsize=(3.8 * len(augments), 3.4), squeeze=False, sharey=True)
    for i, (ax, name) in enumerate(zip(axes[0], augments)):
        sns.barplot(frame[frame["augment"] == name], x="labels per class", y="gain", hue="method", errorbar="sd",
                    ax=ax, legend=i == 0)
        ax.axhline(0, color="black", lw=0.8)
        if i == 0:
            ax.legend(loc="lower left", fontsize=8)
        ax.set_title(name)
        ax.set_ylabel("gain over no augmentation (points)" if i == 0 else "")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def strength_sweep(
    rows: Sequence[dict], turnover: Sequence[dict] = (), value: str = "target_accuracy", title: str = ""
):
    """``value`` against augmentation strength, one line per method (± 1 std over seeds); the best
    strength of each method (from :func:`datl_helpers.transfer.augment.turnover`) is marked with a star."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    methods = list(dict.fromkeys(frame["method"]))
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
    sns.lineplot(frame, x="strength", y=value, hue="method", errorbar="sd", err_style="bars", marker="o",
                 palette=palette, ax=ax)
    for t in turnover:  # a hollow star: the best strength does not beat none beyond the seed spread
        colour = palette.get(t["method"], "black")
        ax.plot([t["best_strength"]], [t["best"]], marker="*", ms=15, color=colour, markeredgecolor="black",
                markerfacecolor=colour if t.get("helps", True) else "white")
    _label_axes(ax, "augmentation strength (0 = none, 1 = deliberately too much)", value, title)
    fig.tight_layout()
    return fig


def budget_curves(family: Mapping, value: str = "target_accuracy", title: str = ""):
    """Mean ``value`` (± 1 std over seeds) against the training budget, one line per configuration
    of a budget-curve family (:func:`datl_helpers.core.budget.load_curves`); a ring marks the budget at
    which each line converged, the dashed line the family's budget."""
    import pandas as pd
    import seaborn as sns

    from datl_helpers.core.budget import converged_budget

    plt = _plt()
    frame = pd.DataFrame([dict(r, configuration=c["name"]) for c in family["curves"] for r in c["rows"]])
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    names = [c["name"] for c in family["curves"]]
    palette = dict(zip(names, sns.color_palette(n_colors=len(names))))
    sns.lineplot(frame, x="steps", y=value, hue="configuration", errorbar="sd", err_style="bars", marker="o",
                 palette=palette, ax=ax)
    for c in family["curves"]:
        at = converged_budget(c["means"])
        if at is not None:
            ax.plot([at], [c["means"][at]], marker="o", ms=13, markerfacecolor="none", color=palette[c["name"]])
    if family.get("budget"):
        ax.axvline(family["budget"], color="black", ls="--", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.legend(fontsize=7, loc="lower right")
    _label_axes(ax, "training steps (log scale)", value, title)
    fig.tight_layout()
    return fig


def moons_boundaries(result: dict, title: str = ""):
    """Decision regions of source-only and DANN on the two-moons toy (``moons.compare`` output):
    source points as dots coloured by class, target points as crosses."""
    from datl_helpers.adaptation.moons import decision_grid

    plt = _plt()
    moons = result["moons"]
    fig, axes = plt.subplots(1, len(result["models"]), figsize=(5 * len(result["models"]), 4.2))
    for ax, (method, model) in zip(np.atleast_1d(axes), result["models"].items()):
        gx, gy, prob = decision_grid(model, moons)
        ax.contourf(gx, gy, prob, levels=[0, 0.5, 1], colors=["#cfe2f3", "#fde2cf"], alpha=0.8)
        ax.contour(gx, gy, prob, levels=[0.5], colors="k", linewidths=1)
        for cls, colour in ((0, "tab:blue"), (1, "tab:orange")):
            s = moons.ys == cls
            t = moons.yt == cls
            ax.scatter(moons.xs[s, 0], moons.xs[s, 1], s=9, c=colour, label=f"source, class {cls}")
            ax.scatter(moons.xt[t, 0], moons.xt[t, 1], s=14, c=colour, marker="x", alpha=0.6,
                       label=f"target, class {cls}")
        ax.set_title(f"{method}: target accuracy {result['target_accuracy'][method]:.1%}")
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title or f"two moons, target rotated by {moons.angle:.0f} degrees")
    fig.tight_layout()
    return fig


def dann_curves(histories: Mapping, title: str = ""):
    """Label loss, domain loss and domain-classifier accuracy against the step, one line per run
    (``{name: History}`` from ``dann.fit``), with lambda on the last panel's right axis."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for name, history in histories.items():
        steps = history["step"]
        for ax, key in zip(axes, ("label_loss", "domain_loss", "domain_accuracy")):
            ax.plot(steps, history[key], label=name)
            ax.set_title(key.replace("_", " "))
            ax.set_xlabel("step")
    axes[1].axhline(np.log(2), color="grey", ls=":", lw=1)
    axes[1].text(0, np.log(2), " chance (ln 2)", va="bottom", fontsize=7, color="grey")
    axes[2].axhline(0.5, color="grey", ls=":", lw=1)
    axes[2].set_ylim(0.3, 1.02)
    twin = axes[2].twinx()
    lam = max(histories.values(), key=lambda h: max(h["lambda"]))
    twin.plot(lam["step"], lam["lambda"], color="k", ls="--", lw=1, label="lambda")
    twin.set_ylabel("lambda (dashed)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def adversarial_grid(examples: Mapping[str, torch.Tensor], title: str = ""):
    """Clean images (top), their attacked versions (middle) and the perturbation, magnified (bottom),
    each image captioned with the prediction and its confidence (red when it is wrong)."""
    plt = _plt()
    n = len(examples["labels"])
    fig, axes = plt.subplots(3, n, figsize=(1.15 * n + 0.6, 4.3), squeeze=False)
    delta = examples["adversarial"] - examples["clean"]
    scale = max(float(delta.abs().max()), 1e-8)
    rows = [("clean", examples["clean"], examples["clean_pred"], examples["clean_conf"]),
            ("attacked", examples["adversarial"], examples["adv_pred"], examples["adv_conf"]),
            ("perturbation", 0.5 + 0.5 * delta / scale, None, None)]
    for r, (name, images, pred, conf) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            ax.imshow(images[i].permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if pred is not None:
                wrong = int(pred[i]) != int(examples["labels"][i])
                ax.set_title(f"{int(pred[i])} ({100 * float(conf[i]):.0f}%)", fontsize=8,
                             color="tab:red" if wrong else "black")
            if i == 0:
                ax.set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def robustness_curves(rows: Sequence[dict], attack: str = "pgd", title: str = ""):
    """Mean accuracy (± std over seeds) against eps, one line per model; ``rows``: one per model and
    seed, with ``name`` and ``robust_accuracy[attack][eps]`` as :func:`datl_helpers.robustness.robust.run_robust` writes."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    long = [{"model": r["name"], "eps (/255)": int(e.split("/")[0]), "accuracy": a}
            for r in rows for e, a in r["robust_accuracy"][attack].items()]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    sns.lineplot(pd.DataFrame(long), x="eps (/255)", y="accuracy", hue="model", marker="o", errorbar="sd", ax=ax)
    ax.set_ylim(0, 1)
    _label_axes(ax, "attack radius eps (in 1/255 of the pixel range)", f"accuracy under {attack.upper()}", title)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def hospital_shift(domains: Mapping[str, object]):
    """Notebook 08: the share of patients with the label per hospital (left) and, per measurement, the share
    of patients without a value (right; one column per hospital). ``domains``: name -> TabularDomain."""
    import seaborn as sns

    plt = _plt()
    names = list(domains)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.4]})
    shares = [domains[n].positive_share for n in names]
    bars = left.barh(names, shares, color="#c44e52")
    for bar, share in zip(bars, shares):
        left.text(share + 0.01, bar.get_y() + bar.get_height() / 2, f"{share:.0%}", va="center", fontsize=9)
    left.set_xlim(0, 1.12)
    left.invert_yaxis()
    left.set_xlabel("share of patients with the label (disease, or relapse)")
    gaps = [n for n in names if any(v > 0 for v in domains[n].missing_share().values())]
    complete = [n for n in names if n not in gaps]
    features = list(dict.fromkeys(f for n in gaps for f in domains[n].features))
    missing = np.array([[domains[n].missing_share().get(f, np.nan) for n in gaps] for f in features])
    keep = np.nansum(missing, axis=1) > 0  # only the measurements that are missing somewhere
    sns.heatmap(missing[keep], annot=True, fmt=".0%", cmap="Greys", vmin=0, vmax=1, cbar=False, ax=right,
                xticklabels=gaps, yticklabels=[f for f, k in zip(features, keep) if k])
    right.set_title("share of patients without the measurement"
                    + (f"\n(none missing in {', '.join(complete)})" if complete else ""))
    right.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    return fig


def method_panels(rows: Sequence[dict], values: Sequence[str] = ("target_accuracy", "target_balanced_accuracy"),
                  title: str = ""):
    """Notebook 08: one panel per score, mean ± std bars per pair (x) and method (colour), over the rows' seeds."""
    import pandas as pd
    import seaborn as sns

    plt = _plt()
    frame = pd.DataFrame(rows).assign(pair=lambda f: f["pair"].str.replace("heart_", "").str.replace("->", " → "))
    fig, axes = plt.subplots(len(values), 1, figsize=(10, 3.2 * len(values)), sharex=True)
    for i, (ax, value) in enumerate(zip(np.atleast_1d(axes), values)):
        sns.barplot(frame, x="pair", y=value, hue="method", errorbar="sd", ax=ax, legend=i == 0)
        ax.set_ylim(0, 1)
        ax.set_ylabel(value.removeprefix("target_").replace("_", " "))
        ax.set_xlabel("")
        ax.grid(axis="y", alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.legend(fontsize=8, ncol=5, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
