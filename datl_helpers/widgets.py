"""ipywidgets controls for the notebooks.

Each control is split in two: a plain function that computes what to show from the control's
values (tested without a kernel), and a builder that wires ipywidgets to it. Building a control
does no long work, and nothing waits for a click, so a non-interactive run (papermill, CI) passes
straight through. Figures are shown as PNG bytes in an ``Image`` widget rather than captured in an
``Output`` widget: capturing output while a notebook is executed headlessly can stall the run.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from datl_helpers.data import Domain

ALL_CLASSES = -1


def browse(
    domains: Mapping[str, Domain], name: str, digit: int = ALL_CLASSES, count: int = 20, seed: int = 0
) -> tuple[torch.Tensor, str]:
    """Images for the domain browser: ``count`` test images of ``digit`` (or of every class) in ``name``,
    and a title that says what they are."""
    if name not in domains:
        raise ValueError(f"unknown domain {name!r}; loaded domains are {sorted(domains)}")
    d = domains[name]
    if digit == ALL_CLASSES:
        mask = torch.ones_like(d.y_test, dtype=torch.bool)
        what = "all classes"
    else:
        if not 0 <= digit < d.num_classes:
            raise ValueError(f"digit must be between 0 and {d.num_classes - 1}, or ALL_CLASSES")
        mask = d.y_test == digit
        what = f"class {digit}"
    idx = torch.nonzero(mask).flatten()
    g = torch.Generator().manual_seed(seed)
    idx = idx[torch.randperm(len(idx), generator=g)[:count]]
    labels = d.y_test[idx].tolist()
    title = f"{name}: {len(idx)} test images, {what}"
    if digit == ALL_CLASSES and labels:
        title += " (labels: " + " ".join(str(v) for v in labels[:20]) + (" ..." if len(labels) > 20 else "") + ")"
    return d.x_test[idx], title


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes (and the figure closed)."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def domain_browser(domains: Mapping[str, Domain], count: int = 20):
    """A domain dropdown, a class selector and a 'new sample' button over an image grid."""
    import ipywidgets as w

    from datl_helpers.plots import show_images

    name = w.Dropdown(options=list(domains), description="domain")
    digit = w.Dropdown(options=[("all", ALL_CLASSES)] + [(str(c), c) for c in range(10)], description="class")
    seed = w.IntSlider(value=0, min=0, max=99, description="sample")
    out = w.Image(format="png")

    def redraw(*_):
        images, title = browse(domains, name.value, digit.value, count, seed.value)
        out.value = figure_png(show_images(images, ncol=10, title=title))

    for control in (name, digit, seed):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([name, digit, seed]), out])


def lookup_result(rows, target: str, labels_per_class, method: str) -> dict:
    """The stored runs for one (target, labels per class, method) cell: mean, std and seeds.

    ``labels_per_class`` is an int or ``"all"``. Raises ``KeyError`` when that cell was not computed.
    """
    from datl_helpers.metrics import mean_std

    picked = [r for r in rows if r["target"] == target and r["labels_per_class"] == labels_per_class and r["method"] == method]
    if not picked:
        raise KeyError(f"no stored runs for {target}, {labels_per_class} labels/class, {method}")
    mean, std = mean_std(r["target_accuracy"] for r in picked)
    return {"mean": mean, "std": std, "seeds": [r["seed"] for r in picked], "seconds": sum(r["seconds"] for r in picked)}


def describe_result(cell: dict, target: str, labels_per_class, method: str) -> str:
    """One sentence for the explorer's output."""
    return (
        f"{method} on {target} with {labels_per_class} labels/class: {100 * cell['mean']:.1f} ± "
        f"{100 * cell['std']:.1f} % test accuracy over seeds {cell['seeds']}"
    )


def transfer_explorer(rows, stage_rows, domains: Mapping[str, Domain], run_live):
    """Pick a target, a label count and a probe stage: the stored results show at once; the button
    trains a fresh run with the chosen settings (``run_live(domain, method, labels, seed)``)."""
    import ipywidgets as w

    targets = list(dict.fromkeys(r["target"] for r in rows))
    counts = list(dict.fromkeys(r["labels_per_class"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    stages = list(dict.fromkeys(r["stage"] for r in stage_rows))
    target = w.Dropdown(options=targets, description="target")
    labels = w.Dropdown(options=counts, description="labels/class")
    stage = w.Dropdown(options=stages, value=stages[-1], description="probe stage")
    button = w.Button(description="fresh live run (seed 100)", layout=w.Layout(width="220px"))
    out = w.HTML()
    live = w.HTML()

    def show(*_):
        lines = []
        for method in methods:
            try:
                lines.append(describe_result(lookup_result(rows, target.value, labels.value, method), target.value, labels.value, method))
            except KeyError as err:
                lines.append(str(err))
        probe = [r["accuracy"] for r in stage_rows if r["stage"] == stage.value and r.get("target", target.value) == target.value]
        if probe:
            lines.append(f"linear probe on stage {stage.value}: {100 * sum(probe) / len(probe):.1f} % (mean over seeds)")
        out.value = "<br>".join(lines)

    def run(_):
        k = None if labels.value == "all" else labels.value
        lines = []
        for method in methods:
            row = run_live(domains[target.value], method, k, 100)
            lines.append(f"live: {method} {100 * row['target_accuracy']:.1f} % in {row['seconds']:.1f} s")
        live.value = "<br>".join(lines)

    for control in (target, labels, stage):
        control.observe(show, names="value")
    button.on_click(run)
    show()
    return w.VBox([w.HBox([target, labels, stage]), out, button, live])


def finetune_playground(run):
    """Sliders for freeze depth, the stage/head learning-rate ratio and weight decay; the button
    calls ``run(config)`` (which returns a History) and draws its learning curves."""
    import ipywidgets as w

    from datl_helpers.finetune import playground_config
    from datl_helpers.plots import history_curves

    freeze = w.IntSlider(value=0, min=0, max=4, description="frozen stages")
    ratio = w.FloatLogSlider(value=0.1, base=10, min=-3, max=0, description="LR ratio")
    decay = w.FloatLogSlider(value=1e-4, base=10, min=-6, max=-1, description="weight decay")
    epochs = w.IntSlider(value=10, min=2, max=30, description="epochs")
    button = w.Button(description="train and plot")
    out = w.Image(format="png")

    def go(_):
        config = playground_config(freeze.value, ratio.value, decay.value, epochs.value, steps_per_epoch=10)
        history = run(config)
        keys = [k for k in ("train_accuracy", "val_accuracy", "source_accuracy") if history[k]]
        title = f"frozen {freeze.value}, LR ratio {ratio.value:.3g}, wd {decay.value:.1g}"
        out.value = figure_png(history_curves(history, keys, title=title))

    button.on_click(go)
    return w.VBox([w.HBox([freeze, ratio]), w.HBox([decay, epochs]), button, out])
