from __future__ import annotations

import pytest
import torch

from datl_helpers import shift, widgets


def test_pixel_statistics(domains):
    grey = shift.pixel_statistics(domains["mnist"])
    colour = shift.pixel_statistics(domains["mnistm"])
    assert grey["saturation"] == 0 and colour["saturation"] > 0.1
    assert grey["brightness"] < colour["brightness"]
    assert shift.brightness_samples(domains["mnist"], n_pixels=100).shape == (100,)


def test_stack_and_embed(domains):
    x, y, names = shift.stack_domains(domains, 30, seed=0)
    assert len(x) == len(y) == len(names) == 120 and set(names) == set(domains)
    flat = x.float().flatten(1).numpy() / 255
    assert shift.embed_2d(flat, "pca").shape == (120, 2)
    assert shift.embed_2d(flat, "tsne", perplexity=10).shape == (120, 2)
    with pytest.raises(ValueError, match="pca"):
        shift.embed_2d(flat, "umap")
    # grey and coloured digits are easy to tell apart from raw pixels
    pair = {k: domains[k] for k in ("mnist", "mnistm")}
    x2, _, names2 = shift.stack_domains(pair, 60, seed=0)
    assert shift.domain_separability(x2.float().flatten(1).numpy() / 255, names2) > 0.9


def test_browse_selects_class_and_is_seeded(domains):
    images, title = widgets.browse(domains, "mnistm", digit=3, count=7, seed=1)
    assert images.shape == (7, 3, 32, 32) and "class 3" in title
    idx = [i for i in range(len(domains["mnistm"].x_test))
           if any(torch.equal(domains["mnistm"].x_test[i], im) for im in images[:1])]
    assert domains["mnistm"].y_test[idx[0]] == 3
    again, _ = widgets.browse(domains, "mnistm", digit=3, count=7, seed=1)
    assert torch.equal(images, again)
    everything, title = widgets.browse(domains, "syn", count=12)
    assert len(everything) == 12 and "all classes" in title


def test_browse_bad_input(domains):
    with pytest.raises(ValueError, match=r"unknown domain .svhn.; choose from digits, mnist"):
        widgets.browse(domains, "svhn")
    with pytest.raises(ValueError, match="between 0 and 9"):
        widgets.browse(domains, "mnist", digit=12)


def test_domain_browser_builds_without_a_kernel(domains):
    import matplotlib

    matplotlib.use("Agg")
    box = widgets.domain_browser({"digits": domains["digits"]}, count=5)
    dropdown = box.children[0].children[0]
    assert dropdown.options == ("digits",)
    first = box.children[1].value
    assert first[:4] == b"\x89PNG"
    box.children[0].children[1].value = 4  # changing a control redraws
    assert box.children[1].value[:4] == b"\x89PNG" and box.children[1].value != first


ROWS = [
    {"target": "mnistm", "labels_per_class": 1, "method": "scratch", "seed": 0, "target_accuracy": 0.1, "seconds": 1.0},
    {"target": "mnistm", "labels_per_class": 1, "method": "scratch", "seed": 1, "target_accuracy": 0.3, "seconds": 1.0},
    {"target": "mnistm", "labels_per_class": 1, "method": "linear-probe", "seed": 0, "target_accuracy": 0.5,
     "seconds": 0.5},
]


def test_lookup_result_reads_stored_runs():
    cell = widgets.lookup_result(ROWS, "mnistm", 1, "scratch")
    assert cell["mean"] == pytest.approx(0.2) and cell["seeds"] == [0, 1] and cell["std"] > 0
    assert "20.0 ±" in widgets.describe_result(cell, "mnistm", 1, "scratch")
    with pytest.raises(KeyError, match="no stored runs"):
        widgets.lookup_result(ROWS, "mnist", 1, "scratch")


def test_transfer_explorer_shows_results_and_runs_only_on_click(domains):
    calls = []

    def run_live(domain, method, k, seed):
        calls.append((method, k, seed))
        return {"target_accuracy": 0.5, "seconds": 0.1}

    stage_rows = [{"target": "mnistm", "stage": "fc", "seed": 0, "accuracy": 0.7}]
    box = widgets.transfer_explorer(ROWS, stage_rows, {"mnistm": domains["mnistm"]}, run_live)
    html = box.children[1].value
    assert "scratch on mnistm with 1 labels/class: 20.0" in html and "stage fc: 70.0" in html
    assert calls == []  # building the widget trains nothing
    box.children[2].click()
    assert calls == [("scratch", 1, 100), ("linear-probe", 1, 100)]
    assert "live: scratch 50.0 %" in box.children[3].value
