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

from datl_helpers.core.domain import Domain
from datl_helpers.core.errors import check_choice

ALL_CLASSES = -1


def browse(
    domains: Mapping[str, Domain], name: str, digit: int = ALL_CLASSES, count: int = 20, seed: int = 0
) -> tuple[torch.Tensor, str]:
    """Images for the domain browser: ``count`` test images of ``digit`` (or of every class) in ``name``,
    and a title that says what they are."""
    check_choice("domain", name, sorted(domains))
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
    if digit == ALL_CLASSES and labels:  # one line of labels per row of 10 images, so the title fits
        rows = [" ".join(str(v) for v in labels[i : i + 10]) for i in range(0, min(len(labels), 20), 10)]
        title += "\nlabels: " + "  |  ".join(rows) + (" ..." if len(labels) > 20 else "")
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

    from datl_helpers.course.plots import show_images

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
    from datl_helpers.core.metrics import mean_std

    picked = [r for r in rows
              if r["target"] == target and r["labels_per_class"] == labels_per_class and r["method"] == method]
    if not picked:
        raise KeyError(f"no stored runs for {target}, {labels_per_class} labels/class, {method}")
    mean, std = mean_std(r["target_accuracy"] for r in picked)
    return {"mean": mean, "std": std, "seeds": [r["seed"] for r in picked],
            "seconds": sum(r["seconds"] for r in picked)}


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
                cell = lookup_result(rows, target.value, labels.value, method)
                lines.append(describe_result(cell, target.value, labels.value, method))
            except KeyError as err:
                lines.append(str(err))
        probe = [r["accuracy"] for r in stage_rows
                 if r["stage"] == stage.value and r.get("target", target.value) == target.value]
        if probe:
            probe_mean = 100 * sum(probe) / len(probe)
            lines.append(f"linear probe on stage {stage.value}: {probe_mean:.1f} % (mean over seeds)")
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

    from datl_helpers.course.plots import history_curves
    from datl_helpers.transfer.finetune import playground_config

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


def strength_view(images: torch.Tensor, strength: float, kinds: str = "all", seed: int = 0) -> tuple[torch.Tensor, str]:
    """The augmentation gallery's content: ``images`` augmented at ``strength`` with the kind set
    ``kinds`` (a key of :data:`datl_helpers.transfer.augment.KIND_SETS`), one draw per image, and a title."""
    from datl_helpers.transfer import augment

    check_choice("kind set", kinds, augment.KIND_SETS)
    out = augment.augment_batch(images, strength, seed=seed, kinds=augment.KIND_SETS[kinds], group_size=1)
    return out, f"strength {strength:.2f}, {kinds} ({', '.join(augment.KIND_SETS[kinds])}), draw {seed}"


def measured_at(rows, strength: float) -> str:
    """What the stored strength sweep measured nearest to ``strength``: mean test accuracy per method."""
    from datl_helpers.core.metrics import mean_std

    if not rows:
        return "no stored sweep"
    nearest = min({r["strength"] for r in rows}, key=lambda s: (abs(s - strength), s))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    parts = []
    for m in methods:
        picked = [r["target_accuracy"] for r in rows if r["method"] == m and r["strength"] == nearest]
        if picked:
            mean, std = mean_std(picked)
            parts.append(f"{m} {100 * mean:.1f} ± {100 * std:.1f} %")
    labels = rows[0]["labels_per_class"]
    return f"measured at strength {nearest:g} ({labels} labels/class, test accuracy over seeds): " + ", ".join(parts)


def augmentation_gallery(images: torch.Tensor, sweep_rows=(), ncol: int = 10):
    """A strength slider, a kind-set selector and a 'new draw' slider over a grid of augmented
    images, with the accuracy the stored sweep measured at the nearest strength (nothing trains)."""
    import ipywidgets as w

    from datl_helpers.course.plots import show_images
    from datl_helpers.transfer import augment

    strength = w.FloatSlider(value=augment.PRESETS["medium"], min=0.0, max=1.0, step=0.05, description="strength")
    kinds = w.Dropdown(options=list(augment.KIND_SETS), value="all", description="kinds")
    seed = w.IntSlider(value=0, min=0, max=99, description="draw")
    out = w.Image(format="png")
    measured = w.HTML()

    def redraw(*_):
        shown, title = strength_view(images, strength.value, kinds.value, seed.value)
        out.value = figure_png(show_images(shown, ncol=ncol, title=title))
        measured.value = measured_at(list(sweep_rows), strength.value)

    for control in (strength, kinds, seed):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([strength, kinds, seed]), out, measured])


def moons_playground(run, first: dict, lambda_max: float = 1.0):
    """Sliders for the target's rotation and lambda_max; every change calls ``run(angle, lambda_max)``
    (``moons.compare``, under a second) and redraws both decision boundaries. ``first`` is an
    already computed result to show before any change."""
    import ipywidgets as w

    from datl_helpers.course.plots import moons_boundaries

    angle_slider = w.FloatSlider(value=first["moons"].angle, min=0, max=90, step=5, description="rotation °",
                                 continuous_update=False)
    lam_slider = w.FloatSlider(value=lambda_max, min=0, max=2, step=0.1, description="λ max", continuous_update=False)
    out = w.Image(format="png")

    def draw(_=None):
        out.value = figure_png(moons_boundaries(run(angle_slider.value, lam_slider.value)))

    angle_slider.observe(draw, names="value")
    lam_slider.observe(draw, names="value")
    out.value = figure_png(moons_boundaries(first))
    return w.VBox([w.HBox([angle_slider, lam_slider]), out])


def describe_pair(rows, pair: str) -> str:
    """One line of measured results for ``pair`` ("mnist -> mnistm"): mean ± std per method."""
    from datl_helpers.core.metrics import mean_std

    parts = []
    for method in dict.fromkeys(r["method"] for r in rows if r["pair"] == pair):
        mean, std = mean_std(r["target_accuracy"] for r in rows if r["pair"] == pair and r["method"] == method)
        parts.append(f"{method} {100 * mean:.1f} ± {100 * std:.1f} %")
    return f"{pair}, measured above: " + ", ".join(parts) if parts else f"{pair}: not measured above"


def dann_playground(rows, run, pairs, lambda_max: float = 0.3, gamma: float = 10.0):
    """Pick a source/target pair, lambda_max and gamma. The measured results for the pair show at once;
    the button calls ``run(pair, lambda_max, gamma)`` (which returns ``(row, history)``) for a short
    live DANN run and draws its curves."""
    import ipywidgets as w

    from datl_helpers.course.plots import dann_curves

    pair = w.Dropdown(options=list(pairs), description="pair")
    lam = w.FloatLogSlider(value=lambda_max, base=10, min=-2, max=0.5, description="λ max")
    gam = w.FloatSlider(value=gamma, min=1, max=30, step=1, description="γ")
    measured = w.HTML(describe_pair(rows, pair.value))
    button = w.Button(description="train live")
    live = w.HTML()
    out = w.Image(format="png")
    pair.observe(lambda _: setattr(measured, "value", describe_pair(rows, pair.value)), names="value")

    def go(_):
        row, history = run(pair.value, lam.value, gam.value)
        live.value = (f"live run: target accuracy {row['target_accuracy']:.1%}, source {row['source_accuracy']:.1%}, "
                      f"domain accuracy {row['domain_accuracy']:.2f}")
        title = f"{pair.value}, λ max {lam.value:.2g}, γ {gam.value:g}"
        out.value = figure_png(dann_curves({"dann": history}, title=title))

    button.on_click(go)
    return w.VBox([w.HBox([pair, lam, gam]), measured, button, live, out])


def attack_view(models, name: str, x: torch.Tensor, y: torch.Tensor, eps_levels: int, attack: str = "pgd",
                seed: int = 0, device="cpu") -> tuple[dict, str]:
    """The ε widget's content: :func:`datl_helpers.robustness.robust.adversarial_examples` of model ``name`` at
    ``eps_levels / 255``, and a title with how many of the images the attack flipped."""
    from datl_helpers.robustness import robust

    check_choice("model", name, list(models))
    eps = eps_levels / 255
    examples = robust.adversarial_examples(models[name], x, y, eps, attack, seed=seed, device=device)
    right = (examples["clean_pred"] == examples["labels"]).sum().item()
    still = (examples["adv_pred"] == examples["labels"]).sum().item()
    title = (f"{name}, {attack.upper()} at eps = {eps_levels}/255: {right} of {len(y)} right before the attack, "
             f"{still} after")
    return examples, title


def attack_explorer(models, x: torch.Tensor, y: torch.Tensor, device="cpu"):
    """A model selector, an attack selector and an ε slider (in grey levels, 0-16) over clean and
    attacked images with predictions and confidences (each change attacks a few images: instant)."""
    import ipywidgets as w

    from datl_helpers.course.plots import adversarial_grid
    from datl_helpers.robustness import robust

    model = w.Dropdown(options=list(models), description="model")
    attack = w.Dropdown(options=list(robust.ATTACKS), value="pgd", description="attack")
    eps = w.IntSlider(value=8, min=0, max=16, description="eps (/255)")
    out = w.Image(format="png")

    def redraw(*_):
        examples, title = attack_view(models, model.value, x, y, eps.value, attack.value, device=device)
        out.value = figure_png(adversarial_grid(examples, title=title))

    for control in (model, attack, eps):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([model, attack, eps]), out])

def describe_predictions(text: str, predictions: Mapping[str, tuple[str, float]]) -> str:
    """One line per model for a typed text: ``predictions`` maps a model's name to (class, confidence)."""
    if not text.strip():
        return "type a review (or an email) above"
    return "<br>".join(f"<b>{name}</b>: {label} ({confidence:.0%} sure)" for name, (label, confidence) in predictions.items())


def text_predictor(predict, example: str = ""):
    """A text box: as you type, ``predict(text)`` (a dict: model name -> (class, confidence)) is shown
    for every model (notebook 07: source-only against DANN)."""
    import ipywidgets as w

    box = w.Textarea(value=example, placeholder="type a review or an email", layout=w.Layout(width="90%"),
                     continuous_update=False)
    shown = w.HTML(describe_predictions(example, predict(example) if example.strip() else {}))
    box.observe(lambda _: setattr(shown, "value", describe_predictions(box.value, predict(box.value)
                                                                        if box.value.strip() else {})), names="value")
    return w.VBox([box, shown])


def describe_scores(share: float, table: Mapping[str, Mapping[str, float]]) -> str:
    """An HTML table of accuracy, balanced accuracy, AUC and Brier score per model (notebook 08's widget)."""
    head = "".join(f"<th>{h}</th>" for h in ("", "accuracy", "balanced accuracy", "AUC", "Brier"))
    rows = "".join(
        f"<tr><td><b>{name}</b></td><td>{s['accuracy']:.1%}</td><td>{s['balanced_accuracy']:.1%}</td>"
        f"<td>{s['auc']:.3f}</td><td>{s['brier']:.3f}</td></tr>" for name, s in table.items())
    return f"<p>target patients resampled to {share:.0%} with the label</p><table><tr>{head}</tr>{rows}</table>"


def prior_explorer(compute, first_share: float):
    """A slider for the share of positive patients in the target hospital; every change calls
    ``compute(share)`` (``tabular.scores_at_share``, a few milliseconds) and redraws the table."""
    import ipywidgets as w

    slider = w.FloatSlider(value=first_share, min=0.05, max=0.95, step=0.05, description="share sick",
                           continuous_update=False, readout_format=".0%")
    shown = w.HTML(describe_scores(first_share, compute(first_share)))
    slider.observe(lambda _: setattr(shown, "value", describe_scores(slider.value, compute(slider.value))), names="value")
    return w.VBox([slider, shown])
