"""ipywidgets controls for the notebooks.

Each control is split in two: a plain function that computes what to show from the control's
values (tested without a kernel), and a builder that wires ipywidgets to it. Building a control
does no long work, and nothing waits for a click, so a non-interactive run (papermill, CI) passes
straight through.
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


def domain_browser(domains: Mapping[str, Domain], count: int = 20):
    """A domain dropdown, a class selector and a 'new sample' button over an image grid."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    from datl_helpers.plots import show_images

    name = w.Dropdown(options=list(domains), description="domain")
    digit = w.Dropdown(options=[("all", ALL_CLASSES)] + [(str(c), c) for c in range(10)], description="class")
    seed = w.IntSlider(value=0, min=0, max=99, description="sample")
    out = w.Output()

    def redraw(*_):
        images, title = browse(domains, name.value, digit.value, count, seed.value)
        with out:
            out.clear_output(wait=True)
            fig = show_images(images, ncol=10, title=title)
            display(fig)
            plt.close(fig)

    for control in (name, digit, seed):
        control.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox([name, digit, seed]), out])
