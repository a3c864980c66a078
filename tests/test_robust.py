"""Attacks, robust accuracy, adversarial training and the robust backbone (notebook 06)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from datl_helpers import models, robust, train
from datl_helpers.core.errors import ChoiceError, DatlError


@pytest.fixture
def tiny_target(domains):
    return domains["mnistm"]


def linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))


def batch(seed: int = 0, n: int = 16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
@pytest.mark.parametrize("eps", [1 / 255, 8 / 255, 0.3])
def test_perturbation_stays_in_the_ball_and_the_pixel_range(name, eps):
    model = linear_model()
    x, y = batch()
    adv = robust.attack(name, model, x, y, eps, generator=torch.Generator().manual_seed(0))
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert not adv.requires_grad


def test_fgsm_on_a_linear_model_matches_its_closed_form():
    # For logits W x + b the input gradient of the cross-entropy is W^T (softmax - onehot): FGSM moves
    # every pixel by eps in the sign of that vector (then clips to [0, 1]).
    model = linear_model()
    x, y = batch()
    eps = 4 / 255
    w = model[1].weight.detach()
    p = torch.softmax(model(x), 1).detach()
    grad = (p - nn.functional.one_hot(y, 3).float()) @ w
    expected = (x + eps * grad.sign().view_as(x)).clamp(0, 1)
    assert torch.allclose(robust.fgsm(model, x, y, eps), expected, atol=1e-6)


def test_attacks_raise_the_loss_and_pgd_beats_fgsm():
    model = linear_model()
    x, y = batch(n=64)
    eps = 0.1
    loss = lambda xx: nn.functional.cross_entropy(model(xx), y).item()  # noqa: E731
    fgsm = robust.fgsm(model, x, y, eps)
    pgd = robust.pgd(model, x, y, eps, steps=20, generator=torch.Generator().manual_seed(0))
    assert loss(x) < loss(fgsm) <= loss(pgd) + 1e-4


def test_attacks_are_deterministic_with_a_seed():
    model = linear_model()
    x, y = batch()
    a = robust.pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(3))
    b = robust.pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(3))
    c = robust.pgd(model, x, y, 0.1, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_attacks_leave_the_parameters_without_gradients():
    model = linear_model()
    x, y = batch()
    robust.pgd(model, x, y, 0.1, steps=3)
    assert all(p.grad is None for p in model.parameters())


def test_hand_written_attacks_agree_with_the_adversarial_robustness_toolbox():
    art = pytest.importorskip("art.estimators.classification")
    evasion = pytest.importorskip("art.attacks.evasion")
    model = linear_model()
    x, y = batch(n=32)
    clf = art.PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(3, 4, 4), nb_classes=3,
                                clip_values=(0.0, 1.0), device_type="cpu")
    eps = 8 / 255
    theirs = evasion.FastGradientMethod(clf, eps=eps, norm=np.inf).generate(x.numpy(), y=y.numpy())
    assert np.allclose(robust.fgsm(model, x, y, eps).numpy(), theirs, atol=1e-6)
    # PGD without a random start is deterministic in both: the same sign steps and projections
    theirs = evasion.ProjectedGradientDescent(clf, eps=eps, eps_step=eps / 4, max_iter=10, num_random_init=0,
                                              norm=np.inf, verbose=False).generate(x.numpy(), y=y.numpy())
    ours = robust.pgd(model, x, y, eps, steps=10, alpha=eps / 4, random_start=False)
    assert np.allclose(ours.numpy(), theirs, atol=1e-5)


def test_robust_accuracy_is_clean_accuracy_at_zero_and_falls_with_eps():
    model = models.DigitNet(widths=(8, 8, 8), feature_dim=16)
    model.eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = train.predict(model, x, device="cpu")  # labels the model gets right: clean accuracy 1
    acc = robust.robust_accuracy(model, x, y, (0.0, 2 / 255, 0.5), "pgd", device="cpu")
    assert acc[0.0] == 1.0
    assert acc[0.5] <= acc[2 / 255] <= 1.0 and acc[0.5] < 0.5
    assert acc == robust.robust_accuracy(model, x, y, (0.0, 2 / 255, 0.5), "pgd", device="cpu")
    with pytest.raises(ChoiceError, match="choose from fgsm, pgd"):
        robust.robust_accuracy(model, x, y, (0.1,), "cw", device="cpu")
    with pytest.raises(DatlError, match="eps must be >= 0"):
        robust.robust_accuracy(model, x, y, (-0.1,), "pgd", device="cpu")


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
def test_adversarial_step_trains_on_adversarial_batches(name):
    model = linear_model()
    x, y = batch(n=32)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = robust.adversarial_step(name, eps=0.1, pgd_steps=2, seed=0)
    loss, logits = step(model, opt, x, y)
    # the loss it reports is that of the attacked batch: higher than the clean batch's before the step
    torch.manual_seed(0)
    clean = linear_model()
    assert loss.item() > nn.functional.cross_entropy(clean(x), y).item()
    assert logits.shape == (32, 3) and not loss.requires_grad


def test_fit_takes_an_adversarial_step():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = torch.arange(64) % 10
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = models.DigitNet(widths=(8, 8, 8), feature_dim=16)
        train.fit(model, x, y, train.FitConfig(epochs=1, steps_per_epoch=3, batch_size=16),
                  step=robust.adversarial_step("fgsm", 0.03), device="cpu", progress=False)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])  # seeded: the same attack and the same weights


def test_sanity_checks_pass_for_a_real_model_and_flag_a_masked_one():
    model = models.DigitNet(widths=(8, 8, 8), feature_dim=16)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = train.predict(model, x, device="cpu")
    rows = robust.sanity_checks(model, x, y, device="cpu")
    assert [r["passed"] for r in rows] == [True, True, True], rows

    class Masked(nn.Module):  # a nearest-neighbour lookup: right on every image, zero gradient everywhere
        def __init__(self, images, labels):
            super().__init__()
            self.images, self.labels = images.float().div(255).flatten(1), labels

        def forward(self, xx):
            nearest = torch.cdist(xx.detach().flatten(1), self.images).argmin(1)
            return 10.0 * nn.functional.one_hot(self.labels[nearest], 10).float() + 0 * xx.sum()

    rows = robust.sanity_checks(Masked(x, y), x, y, device="cpu")
    assert not rows[0]["passed"]  # accuracy never falls: the tell-tale of gradient masking


def test_probe_as_head_is_the_same_function_as_the_sklearn_probe():
    from datl_helpers.transfer.features import fit_logistic_probe

    g = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 5, generator=g) * 3 + 1
    labels = torch.arange(60) % 3
    probe = fit_logistic_probe(feats, labels)
    head = robust.probe_as_head(probe, 5)
    assert np.allclose(head(feats).detach().numpy(), probe.decision_function(feats.numpy()), atol=1e-4)


def test_eps_parsing_and_names():
    assert robust.parse_eps("8/255") == pytest.approx(8 / 255)
    assert robust.parse_eps("0.03") == pytest.approx(0.03)
    assert robust.eps_name(8 / 255) == "8/255" and robust.eps_name(0.03) == "7.65/255"
    for bad in ("-1/255", "2", "x", "1/0"):
        with pytest.raises(DatlError, match="radius in"):
            robust.parse_eps(bad)


def test_unknown_backbone_method_and_misplaced_adversarial_training_are_refused(tiny_target):
    with pytest.raises(ChoiceError, match="choose from standard, robust"):
        robust.load_backbone("imagenet")
    with pytest.raises(ChoiceError, match="unknown method"):
        robust.train_model("oracle", tiny_target, 2)
    with pytest.raises(DatlError, match="adversarial training applies to scratch and finetune"):
        robust.train_model("linear-probe", tiny_target, 2, config=robust.RobustConfig(adversarial="fgsm"))


def test_run_robust_row_shape_and_determinism(tiny_target):
    config = robust.RobustConfig(steps=3, eps=(0.0, 2 / 255, 8 / 255), n_test=20, pgd_steps=2)
    rows = [robust.run_robust(tiny_target, "finetune", 2, config=config, seed=0, device="cpu") for _ in range(2)]
    row = rows[0]
    assert set(row["robust_accuracy"]) == {"fgsm", "pgd"}
    assert set(row["robust_accuracy"]["pgd"]) == {"0/255", "2/255", "8/255"}
    assert row["robust_accuracy"] == rows[1]["robust_accuracy"]
    assert row["clean_accuracy"] == rows[1]["clean_accuracy"]
    assert row["robust_accuracy"]["pgd"]["8/255"] <= row["robust_accuracy"]["pgd"]["0/255"]


def test_both_backbones_ship_hash_checked():
    for name in ("standard", "robust"):
        model = robust.load_backbone(name)
        assert isinstance(model, models.DigitNet)
    info = models.pretrained_info(robust.BACKBONES["robust"])
    assert info["training"]["adversarial"]["attack"] in ("fgsm", "pgd")
    assert info["training"]["adversarial"]["eps"] == "8/255"
    acc = info["robust_accuracy"]["accuracy"]
    standard = models.pretrained_info()["robust_accuracy"]["accuracy"] if "robust_accuracy" in models.pretrained_info() \
        else None
    assert acc["syn"]["8/255"] > 0.3  # the robust backbone resists PGD-10 on its own domain
    if standard is not None:
        assert acc["syn"]["8/255"] > standard["syn"]["8/255"]
