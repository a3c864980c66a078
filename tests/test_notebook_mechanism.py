"""The mechanism each notebook writes out in its cells agrees with its library twin on one batch."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from datl_helpers import dann, models, train
from datl_helpers.core.domain import to_float

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def mechanism(notebook: str) -> dict:
    """Run the notebook's cells tagged ``mechanism`` (definitions only) and return what they define."""
    nb = json.loads((NOTEBOOKS / notebook).read_text())
    cells = [c for c in nb["cells"] if "mechanism" in c.get("metadata", {}).get("tags", [])]
    assert cells, f"{notebook} has no cell tagged 'mechanism'"
    namespace = {"torch": torch}
    for cell in cells:
        exec("".join(cell["source"]), namespace)
    return namespace


def _twin_step_setup(domains):
    """16 mnistm training images, two identical fine-tunable models (the notebook's and the library's
    side) and an SGD optimizer for each: one step on each must end the same."""
    target = domains["mnistm"]
    torch.manual_seed(0)
    ours = models.replace_head(models.load_pretrained(), 10)
    library = copy.deepcopy(ours)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1) for m in (ours, library)]
    return to_float(target.x_train[:16]), target.y_train[:16], (ours, library), opts


def test_notebook_04_dann_step_matches_the_library(domains):
    step_by_hand = mechanism("04_domain_adversarial.ipynb")["dann_step_by_hand"]
    torch.manual_seed(0)
    model = models.load_pretrained()
    disc = dann.DomainClassifier(model.feature_dim)
    twins = [(copy.deepcopy(model), copy.deepcopy(disc)) for _ in range(2)]
    opts = [torch.optim.SGD([*m.parameters(), *d.parameters()], lr=0.1) for m, d in twins]
    src, tgt = domains["mnist"], domains["mnistm"]
    xs, ys, xt = to_float(src.x_train[:16]), src.y_train[:16], to_float(tgt.x_train[:16])

    (m1, d1), (m2, d2) = twins
    ours = step_by_hand(m1, d1, opts[0], xs, ys, xt, lam=0.5)
    d2.reverse.coeff = 0.5
    label_loss, domain_loss, *_ = dann.dann_step(m2, d2, opts[1], torch.cat([xs, xt]), ys, len(xs), fast=False,
                                                 per_domain_bn=True)
    assert ours == pytest.approx((label_loss.item(), domain_loss.item()), rel=1e-5)
    for (name, a), b in zip([*m1.named_parameters(), *d1.named_parameters()], [*m2.parameters(), *d2.parameters()]):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name  # the same gradients, reversal included
        assert torch.allclose(a, b, atol=1e-6), name


def test_notebook_01_probe_matches_the_library(domains):
    ns = mechanism("01_feature_extraction.ipynb")
    torch.manual_seed(0)
    ours = ns["make_linear_probe"](models.load_pretrained(), 10)
    library = models.replace_head(models.load_pretrained(), 10)
    models.freeze_stages(library, len(library.stage_names))
    library.head.load_state_dict(ours.head.state_dict())  # the same fresh head in both
    trainable = lambda m: [n for n, p in m.named_parameters() if p.requires_grad]  # noqa: E731
    assert trainable(ours) == trainable(library) == ["head.weight", "head.bias"]

    target = domains["mnistm"]
    xb, yb = to_float(target.x_train[:32]), target.y_train[:32]
    stats = {k: v.clone() for k, v in ours.state_dict().items() if "running" in k}
    opts = [torch.optim.SGD(m.head.parameters(), lr=0.1) for m in (ours, library)]
    loss = ns["probe_step"](ours, opts[0], xb, yb)
    library.train()
    library.stages.eval()  # what features.train_linear_head's epoch hook does
    lib_loss, _ = train.train_step(library, opts[1], xb, yb)
    assert loss == pytest.approx(lib_loss.item(), rel=1e-6)
    assert torch.allclose(ours.head.weight.grad, library.head.weight.grad, atol=1e-7)
    assert torch.allclose(ours.head.weight, library.head.weight, atol=1e-7)
    for k, v in ours.state_dict().items():  # BatchNorm kept its pretrained statistics
        if k in stats:
            assert torch.equal(v, stats[k]), k


def test_notebook_06_attacks_match_the_library(domains):
    from datl_helpers import robust

    ns = mechanism("06_adversarial_robustness.ipynb")
    torch.manual_seed(0)
    model = models.load_pretrained().eval()
    target = domains["mnistm"]
    x, y = to_float(target.x_test[:16]), target.y_test[:16]
    for eps in (2 / 255, 8 / 255):
        assert torch.allclose(ns["fgsm_by_hand"](model, x, y, eps), robust.fgsm(model, x, y, eps), atol=1e-6)
        ours = ns["pgd_by_hand"](model, x, y, eps, steps=5, generator=torch.Generator().manual_seed(3))
        library = robust.pgd(model, x, y, eps, steps=5, generator=torch.Generator().manual_seed(3))
        assert torch.allclose(ours, library, atol=1e-6)


def test_notebook_06_adversarial_training_step_matches_the_library(domains):
    from datl_helpers import robust

    ns = mechanism("06_adversarial_robustness.ipynb")
    xb, yb, (ours, library), opts = _twin_step_setup(domains)
    loss = ns["adversarial_training_step"](ours, opts[0], xb, yb, 8 / 255, generator=torch.Generator().manual_seed(5))
    lib_loss, _ = robust.adversarial_step("fgsm", 8 / 255, seed=5)(library, opts[1], xb, yb)
    assert loss == pytest.approx(lib_loss.item(), rel=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), library.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name


def test_notebook_00_shift_test_matches_the_library(domains):
    import numpy as np

    from datl_helpers import shift

    ns = mechanism("00_setup_and_domains.ipynb")
    x, _, names = shift.stack_domains({n: domains[n] for n in ("mnist", "mnistm")}, 60, seed=0)
    vectors = to_float(x).flatten(1).numpy()
    ours = ns["shift_test"](vectors, names, seed=0)
    assert ours == pytest.approx(shift.domain_separability(vectors, names, seed=0), abs=1e-9)
    assert ours > 0.9  # grey strokes against coloured textures
    same = np.asarray(["a", "b"] * 60)  # one domain split at random: nothing to tell apart
    assert ns["shift_test"](to_float(domains["mnist"].x_test[:120]).flatten(1).numpy(), same, seed=0) < 0.75


def test_notebook_04_reversal_and_domain_classifier_match_the_library():
    ns = mechanism("04_domain_adversarial.ipynb")
    torch.manual_seed(0)
    ours = ns["DomainClassifierByHand"](16, hidden=8, coeff=0.3)
    library = dann.DomainClassifier(16, hidden=8)
    library.reverse.coeff = 0.3
    library.net.load_state_dict(ours.net.state_dict())
    feats = [torch.randn(6, 16, generator=torch.Generator().manual_seed(1)).requires_grad_(True) for _ in range(2)]
    out = [ours(feats[0]), library(feats[1])]
    assert torch.allclose(out[0], out[1])
    for o in out:
        o.sum().backward()
    assert torch.allclose(feats[0].grad, feats[1].grad)  # the same reversed gradient reaches the features
    x = torch.randn(3, 2, requires_grad=True)
    ns["GradReverse"].apply(x, 0.5).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.5))


def test_notebook_02_groups_and_unfreezing_match_the_library():
    from datl_helpers import finetune

    ns = mechanism("02_fine_tuning.ipynb")
    torch.manual_seed(0)
    model = models.replace_head(models.load_pretrained(), 10)
    ours = ns["layerwise_param_groups"](model, 3e-3, 0.3)
    library = models.stage_param_groups(model, lr=3e-3, decay=0.3, include_frozen=True)
    assert [g["name"] for g in ours] == [g["name"] for g in library]
    assert [g["lr"] for g in ours] == pytest.approx([g["lr"] for g in library])
    assert all([id(p) for p in a["params"]] == [id(p) for p in b["params"]] for a, b in zip(ours, library))

    twin = models.replace_head(models.load_pretrained(), 10)
    hook = finetune.gradual_unfreezing(twin, every=2)
    state = lambda m: [(p.requires_grad, mod.training) for s in m.stages.children()  # noqa: E731
                       for mod in s.modules() for p in mod.parameters(recurse=False)]
    for epoch in range(10):
        model.train()
        twin.train()
        ns["unfreeze_for_epoch"](model, epoch, every=2)
        hook(epoch, twin)
        assert state(model) == state(twin), epoch


def test_notebook_02_loop_matches_fit_config(domains):
    """The epoch loop written in notebook 02 (layer-wise groups, gradual unfreezing, L2-SP) ends with the
    weights of the library's twin, finetune.fit_config, after a few epochs of a few steps."""
    import dataclasses

    from datl_helpers import finetune

    ns = mechanism("02_fine_tuning.ipynb")
    target = domains["mnistm"]
    x, y = target.x_train[:40], target.y_train[:40]
    config = dataclasses.replace(finetune.STRATEGIES["gradual unfreezing"], l2sp=0.1, epochs=4, steps_per_epoch=2,
                                 gradual_every=1, batch_size=16)
    train.seed_everything(0)
    ours = finetune.build(config, 10)
    library = copy.deepcopy(ours)
    losses = ns["fine_tune_by_hand"](ours, x, y, config, seed=0)
    history = finetune.fit_config(library, config, x, y, seed=0, device="cpu")
    assert len(losses) == len(history) == 4
    moved = 0
    for (name, a), b in zip(ours.state_dict().items(), library.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-4), name  # channels_last in the library: rounding only
        moved += int(not torch.equal(a, finetune.build(config, 10).state_dict()[name]))
    assert moved > 0
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in library.parameters()]


def test_notebook_03_pipeline_matches_the_library():
    from datl_helpers import augment

    ns = mechanism("03_augmentation.ipynb")
    x = torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    state = torch.random.get_rng_state()
    for strength in (0.25, 1.0):
        ours = ns["augment_by_groups"](x, ns["pipeline_by_hand"](strength), seed=7)
        library = augment.build_pipeline(strength, kinds=("geometry", "colour"))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            expected = torch.cat([library(g) for g in x.split(8)]).clamp(0, 1)
        assert torch.equal(ours, expected), strength
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is untouched
    # and the same seed through the library's BatchAugment gives one draw per group of 8 as well
    aug = augment.BatchAugment(1.0, kinds=("geometry", "colour"), seed=0)
    out = aug(x)
    assert out.shape == x.shape and not torch.equal(out[:8], x[:8])


def test_notebook_03_augmented_step_matches_the_library(domains):
    """Notebook 03's training step on an augmented batch is train.train_step on the library's augmentation
    of that batch (the same draw for the same seed): the same loss and the same weights after the step."""
    from datl_helpers import augment

    ns = mechanism("03_augmentation.ipynb")
    xb, yb, (ours, library), opts = _twin_step_setup(domains)
    loss = ns["augmented_step"](ours, opts[0], xb, yb, ns["pipeline_by_hand"](0.75), seed=3)
    pipeline = augment.build_pipeline(0.75, kinds=("geometry", "colour"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        augmented = torch.cat([pipeline(g) for g in xb.split(8)]).clamp(0, 1)
    assert not torch.equal(augmented, xb)
    lib_loss, _ = train.train_step(library, opts[1], augmented, yb)
    assert loss == pytest.approx(lib_loss.item(), rel=1e-5)
    for (name, a), b in zip(ours.named_parameters(), library.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_notebook_01_photo_recipe_runs_offline_on_a_folder(tmp_path, monkeypatch):
    """Section 6's recipe on a small folder of photos the test writes: random weights (offline),
    and a one-line skip when the ImageNet weights cannot be fetched."""
    from PIL import Image

    from datl_helpers import errors

    g = torch.Generator().manual_seed(0)
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / name).mkdir()
        for i in range(8):
            noise = torch.randint(0, 40, (48, 64, 3), generator=g)
            pixels = (torch.tensor(colour) + noise).clamp(0, 255).to(torch.uint8).numpy()
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    recipe = mechanism("01_feature_extraction.ipynb")["photo_recipe"]
    result = recipe(f"folder:{tmp_path}", weights=None, device="cpu")
    assert result["classes"] == ["blue", "red"] and (result["train_images"], result["test_images"]) == (12, 4)
    assert result["accuracy"] == 1.0  # even random features tell red from blue

    def offline(*args, **kwargs):
        raise errors.DataUnavailableError("could not load ImageNet weights for resnet18 (URLError): offline")

    monkeypatch.setattr(models, "torchvision_backbone", offline)
    skipped = recipe(tmp_path, device="cpu")
    assert skipped.startswith("skipped: could not load ImageNet weights") and "\n" not in skipped
