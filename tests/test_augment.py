from __future__ import annotations

import dataclasses

import pytest
import torch

from datl_helpers import augment, experiments, transfer, widgets
from datl_helpers.core.domain import to_float

FAST = transfer.TransferConfig(steps=8, batch_size=32)


@pytest.fixture(scope="module")
def batch(domains):
    return to_float(domains["mnistm"].x_train[:24])


@pytest.mark.parametrize("preset", list(augment.PRESETS))
def test_presets_keep_shape_dtype_and_range(batch, preset):
    aug = augment.make_augment(preset, seed=0)
    out = batch if aug is None else aug(batch)
    assert out.shape == batch.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    if preset != "none":
        assert not torch.equal(out, batch)
        u8 = (batch * 255).round().to(torch.uint8)
        out8 = aug(u8)
        assert out8.shape == u8.shape and out8.dtype == torch.uint8


def test_strength_one_and_every_kind_stay_in_range(batch):
    for name, kinds in augment.KIND_SETS.items():
        out = augment.augment_batch(batch, 1.0, seed=3, kinds=kinds)
        assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1, name


def test_same_seed_same_batch(batch):
    a = augment.augment_batch(batch, 0.5, seed=7)
    b = augment.augment_batch(batch, 0.5, seed=7)
    c = augment.augment_batch(batch, 0.5, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # a seeded augmenter gives the same sequence of batches, and each call a new draw
    one, two = augment.BatchAugment(0.5, seed=1), augment.BatchAugment(0.5, seed=1)
    first = one(batch)
    assert torch.equal(first, two(batch)) and torch.equal(one(batch), two(batch))
    assert not torch.equal(first, one(batch))


def test_global_rng_is_left_alone(batch):
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    augment.augment_batch(batch, 0.75, seed=0)
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_are_seeded_and_leave_the_gpu_rng_alone(batch):
    on_gpu = batch.to("cuda")
    torch.cuda.manual_seed(123)
    expected = torch.rand(5, device="cuda")
    torch.cuda.manual_seed(123)
    a = augment.augment_batch(on_gpu, 0.75, seed=4)
    assert torch.equal(torch.rand(5, device="cuda"), expected)
    b = augment.augment_batch(on_gpu, 0.75, seed=4)
    assert a.device.type == "cuda" and a.shape == batch.shape and torch.equal(a, b)


def test_strength_zero_is_the_identity(batch):
    assert torch.equal(augment.augment_batch(batch, 0.0, seed=5), batch)
    assert augment.make_augment("none") is None
    assert augment.make_augment("light", strength=0.0) is None


def test_one_draw_per_group(batch):
    same = batch[:1].repeat(8, 1, 1, 1)
    kinds = ("geometry", "colour")  # no pixel noise, which differs from image to image anyway
    per_image = augment.augment_batch(same, 0.75, seed=2, kinds=kinds, group_size=1)
    per_batch = augment.augment_batch(same, 0.75, seed=2, kinds=kinds, group_size=8)
    assert all(torch.equal(per_batch[0], im) for im in per_batch)
    assert sum(torch.equal(per_image[0], im) for im in per_image) == 1
    groups = augment.augment_batch(same, 0.75, seed=2, kinds=kinds, group_size=4)
    assert torch.equal(groups[0], groups[3]) and not torch.equal(groups[0], groups[4])


def test_resolve_strength():
    assert augment.resolve_strength("medium") == augment.PRESETS["medium"]
    assert augment.resolve_strength("heavy", 0.3) == 0.3
    assert augment.resolve_strength("none", 0.0) == 0.0


def test_bad_input_says_what_exists(batch):
    with pytest.raises(ValueError, match="none, light, medium, heavy"):
        augment.make_augment("strong")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment.BatchAugment(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment.resolve_strength("light", -0.1)
    with pytest.raises(ValueError, match="choose a preset"):
        augment.resolve_strength("none", 0.4)
    with pytest.raises(ValueError, match="geometry, colour, texture, occlusion"):
        augment.BatchAugment(0.5, kinds=("color",))
    with pytest.raises(ValueError, match="N x C x H x W"):
        augment.BatchAugment(0.5)(batch[0])


def test_augmented_copies_are_stacked_copy_after_copy(domains):
    x = domains["digits"].x_train[:10]
    copies = augment.augmented_copies(x, augment.BatchAugment(0.5, seed=0), copies=3, batch_size=4)
    assert copies.shape == (30, 3, 32, 32) and copies.dtype == torch.uint8
    assert augment.augmented_copies(x, augment.BatchAugment(0.5), copies=0).shape == (0, 3, 32, 32)


class Recorder:
    """An augmentation that remembers the size of every batch it was given."""

    def __init__(self):
        self.inner = augment.BatchAugment(0.5, seed=0)
        self.sizes: list[int] = []

    def __call__(self, x):
        self.sizes.append(len(x))
        return self.inner(x)


@pytest.mark.parametrize("method", transfer.TRANSFER_METHODS)
def test_augmentation_is_never_applied_at_evaluation(domains, method):
    target = domains["digits"]
    rec = Recorder()
    config = dataclasses.replace(FAST, probe_copies=2)
    row = transfer.run_transfer(target, method, 5, seed=0, config=config, device="cpu", transform=rec)
    assert row["labels"] == 50 and 0 <= row["target_accuracy"] <= 1
    if method == "linear-probe":
        assert rec.sizes == [50, 50]  # two augmented copies of the 50 labelled images, nothing else
    else:
        assert rec.sizes == [FAST.batch_size] * FAST.steps  # training batches only
    assert len(target.y_test) not in rec.sizes


def test_run_transfer_with_augment_is_reproducible(domains):
    config = dataclasses.replace(FAST, augment="heavy")
    a = transfer.run_transfer(domains["digits"], "scratch", 3, seed=1, config=config, device="cpu")
    b = transfer.run_transfer(domains["digits"], "scratch", 3, seed=1, config=config, device="cpu")
    assert a["target_accuracy"] == b["target_accuracy"]
    with pytest.raises(ValueError, match="not both"):
        transfer.run_transfer(domains["digits"], "scratch", 3, config=config, transform=augment.BatchAugment(0.2))


def test_runs_gains_and_turnover(domains):
    rows = experiments.augmentation_runs(domains["digits"], ["linear-probe"], {"none": 0.0, "light": 0.25}, [3], [0, 1],
                                     config=dataclasses.replace(FAST, probe_copies=1), device="cpu")
    assert [(r["augment"], r["seed"]) for r in rows] == [("none", 0), ("none", 1), ("light", 0), ("light", 1)]
    assert rows[0]["kinds"] == "none" and rows[2]["kinds"] == "geometry+colour+texture+occlusion"
    gains = augment.gain_rows(rows)
    assert len(gains) == 2
    assert gains[0]["gain"] == pytest.approx(100 * (rows[2]["target_accuracy"] - rows[0]["target_accuracy"]))


def test_turnover_finds_the_peak_and_where_it_hurts():
    curve = {0.0: 0.60, 0.25: 0.70, 0.5: 0.72, 0.75: 0.65, 1.0: 0.50}
    rows = [{"method": "scratch", "labels_per_class": 10, "strength": s, "seed": seed,
             "target_accuracy": a + 0.01 * seed}
            for s, a in curve.items() for seed in (0, 1)]
    (t,) = augment.turnover(rows)
    assert t["best_strength"] == 0.5 and t["best"] == pytest.approx(0.725)
    assert t["none"] == pytest.approx(0.605) and t["hurts_from"] == 1.0
    assert t["helps"] and t["best_gain"] == pytest.approx(12.0) and t["best_spread"] == pytest.approx(0.0)
    flat = [dict(r, target_accuracy=0.6 + r["strength"] / 10) for r in rows]
    assert augment.turnover(flat)[0]["hurts_from"] is None
    # a loss smaller than the seed-to-seed spread does not count as hurting
    noisy = [dict(r, target_accuracy=r["target_accuracy"] + (0.3 * (-1) ** r["seed"] if r["strength"] == 1.0 else 0))
             for r in rows]
    assert augment.turnover(noisy)[0]["hurts_from"] is None
    # a best strength within the seed spread of none does not count as helping
    within = [dict(r, target_accuracy=0.6 + ((0.03, -0.01)[r["seed"]] if r["strength"] == 0.25 else 0)) for r in rows]
    (t,) = augment.turnover(within)
    assert t["best_strength"] == 0.25 and not t["helps"]


def test_throughput_is_positive():
    assert augment.throughput(0.5, batch_size=16, seconds=0.05) > 0


def test_gallery_widget_without_a_kernel(domains):
    import matplotlib

    matplotlib.use("Agg")
    images = domains["mnistm"].x_test[:6]
    shown, title = widgets.strength_view(images, 0.5, "domain", seed=1)
    assert shown.shape == images.shape and shown.dtype == torch.uint8 and "colour" in title
    assert torch.equal(widgets.strength_view(images, 0.0)[0], images)
    with pytest.raises(ValueError, match="all, generic, domain"):
        widgets.strength_view(images, 0.5, "photometric")
    sweep = [{"method": m, "labels_per_class": 10, "strength": s, "seed": 0, "target_accuracy": 0.5 + s / 10}
             for m in ("scratch", "finetune") for s in (0.0, 0.5, 1.0)]
    assert "strength 0.5" in widgets.measured_at(sweep, 0.6) and "scratch 55.0" in widgets.measured_at(sweep, 0.6)
    box = widgets.augmentation_gallery(images, sweep, ncol=6)
    first = box.children[1].value
    assert first[:4] == b"\x89PNG" and "strength 0.5" in box.children[2].value
    box.children[0].children[0].value = 1.0  # moving the slider redraws and looks up the sweep again
    assert box.children[1].value != first and "strength 1" in box.children[2].value


def test_plots_draw(domains):
    import matplotlib

    matplotlib.use("Agg")
    from datl_helpers import plots

    rows = [{"method": m, "labels_per_class": k, "augment": a, "strength": s, "seed": seed,
             "target_accuracy": 0.5 + s / 4 + seed / 100}
            for m in ("scratch", "finetune") for k in (5, 10) for a, s in augment.PRESETS.items() for seed in (0, 1)]
    for fig in (plots.augmentation_heatmaps(rows), plots.augmentation_lines(rows),
                plots.gain_bars(augment.gain_rows(rows)),
                plots.strength_sweep([r for r in rows if r["labels_per_class"] == 10],
                                     augment.turnover([r for r in rows if r["labels_per_class"] == 10]))):
        assert fig.axes
