from __future__ import annotations

import math

import pytest
import torch

from datl_helpers import dann, selection
from datl_helpers.core.errors import DatlError

QUICK = dann.DannConfig(steps=30, batch_size=32, log_every=10, lambda_max=1.0)


def test_gradient_reversal_forward_identity_backward_negated():
    x = torch.randn(5, 3, requires_grad=True)
    y = dann.grad_reverse(x, 0.7)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, -0.7))
    layer = dann.GradientReversal(2.0)
    x2 = torch.randn(4, dtype=torch.float64, requires_grad=True)
    (layer(x2) * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    assert torch.allclose(x2.grad, -2.0 * torch.arange(4.0, dtype=torch.float64))


def test_schedules():
    assert dann.dann_lambda(0.0) == 0.0
    assert dann.dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann.dann_lambda(0.5, lambda_max=0.5) == pytest.approx(0.5 * (2 / (1 + math.exp(-5)) - 1))
    assert dann.dann_lr(0.0, 0.01) == 0.01
    assert dann.dann_lr(1.0, 0.01) == pytest.approx(0.01 / 11**0.75)


def test_guard_catches_divergence_and_collapse():
    ok = torch.arange(64) % 10
    dann._guard(10, 0.5, 1.0, 0.7, ok, 10)
    with pytest.raises(dann.DivergenceError, match="diverged"):
        dann._guard(10, 0.5, float("nan"), 0.7, ok, 10)
    with pytest.raises(dann.DivergenceError, match="collapse"):
        dann._guard(10, 0.5, 1.0, 0.7, torch.zeros(64, dtype=torch.long), 10)
    dann._guard(1, 0.05, 1.0, 0.7, torch.zeros(64, dtype=torch.long), 10)  # too early to call it
    dann._guard(10, 0.5, 2.3, 0.7, torch.zeros(64, dtype=torch.long), 10)  # nothing learned yet (from scratch)


@pytest.mark.parametrize("method", dann.COMPARED_METHODS)
def test_dann_fit_records_history(domains, method):
    _model, _disc, history = dann.fit(domains["mnist"], domains["mnistm"], method, QUICK, seed=0, device="cpu")
    assert [r["step"] for r in history.records] == [1, 11, 21, 30]
    lambdas = history["lambda"]
    if method == "dann":
        assert lambdas[0] == 0.0 and lambdas[-1] > 0.9 and lambdas == sorted(lambdas)
    else:
        assert set(lambdas) == {0.0}
    assert all(0 <= a <= 1 for a in history["domain_accuracy"])


def test_domain_classifier_reverses_only_the_feature_gradient():
    torch.manual_seed(0)
    disc = dann.DomainClassifier(8, hidden=16)
    f = torch.randn(6, 8, requires_grad=True)
    labels = torch.tensor([0.0, 0, 0, 1, 1, 1])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    disc.reverse.coeff = 0.5
    g_feat, g_w = torch.autograd.grad(bce(disc(f), labels), (f, disc.net[0].weight))
    plain_feat, plain_w = torch.autograd.grad(bce(disc.net(f).squeeze(1), labels), (f, disc.net[0].weight))
    assert torch.allclose(g_feat, -0.5 * plain_feat)  # the features are pushed to confuse the classifier
    assert torch.allclose(g_w, plain_w)  # while the classifier itself learns normally


def test_run_adaptation_and_reproducibility(domains):
    a = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=3, config=QUICK, device="cpu")
    b = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=3, config=QUICK, device="cpu")
    assert set(a) == {"seed", "target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1", "seconds"}
    assert a["target_accuracy"] == b["target_accuracy"] and a["domain_accuracy"] == b["domain_accuracy"]


def test_protocol_keeps_the_backbone_head_and_scales_the_feature_lr():
    from datl_helpers import models

    backbone = models.load_pretrained()
    config = dann.DannConfig(head="own", feature_lr_scale=0.1, lr=1e-3)
    model, disc, opt = dann.build_networks(10, config, torch.device("cpu"), fast=False)
    assert torch.equal(model.head.weight, backbone.head.weight)  # the backbone's own 10-class head
    fresh, _, _ = dann.build_networks(10, dann.DannConfig(head="new"), torch.device("cpu"), fast=False)
    assert not torch.equal(fresh.head.weight, backbone.head.weight)
    five, _, _ = dann.build_networks(5, config, torch.device("cpu"), fast=False)  # other classes: a new head
    assert five.head.out_features == 5
    features, rest = opt.param_groups
    assert features["lr"] == pytest.approx(1e-4) and rest["lr"] == pytest.approx(1e-3)
    assert {id(p) for p in rest["params"]} == {id(p) for p in [*model.head.parameters(), *disc.parameters()]}
    assert len(features["params"]) + len(list(model.head.parameters())) == len(list(model.parameters()))


def test_protocol_lr_schedule_keeps_the_ratio_and_augment_is_seeded(domains):
    config = dann.DannConfig(steps=12, batch_size=16, log_every=4, head="own", feature_lr_scale=0.1, augment=True)
    a = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1, config=config, device="cpu")
    b = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1, config=config, device="cpu")
    assert a["target_accuracy"] == b["target_accuracy"]
    plain = dann.DannConfig(steps=12, batch_size=16, log_every=4, head="own", feature_lr_scale=0.1, augment=False)
    c = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1, config=plain, device="cpu")
    assert (a["target_accuracy"], a["domain_accuracy"]) != (c["target_accuracy"], c["domain_accuracy"])
    _, _, history = dann.fit(domains["mnist"], domains["mnistm"], "dann", config, seed=1, device="cpu")
    assert history["lr"][0] == pytest.approx(config.lr)  # the head's group; the features' is a tenth of it
    with pytest.raises(ValueError, match="own, new"):
        dann.fit(domains["mnist"], domains["mnistm"], "dann", dann.DannConfig(head="old"))


def test_bad_input(domains):
    with pytest.raises(ValueError, match="source-only, dann, target-oracle"):
        dann.fit(domains["mnist"], domains["mnistm"], "adda")
    from datl_helpers.core.domain import Domain

    three = Domain("three", domains["digits"].x_train[:30], torch.arange(30) % 3,
                   domains["digits"].x_test[:9], torch.arange(9) % 3)
    with pytest.raises(DatlError, match="same classes"):
        dann.fit(domains["mnist"], three, "dann", QUICK)


def test_adapt_command_json_and_npz_target(tmp_path, domains, capsys):
    import json

    import numpy as np

    from datl_helpers.cli.main import main
    from datl_helpers.core.domain import few_labels

    xs, ys = few_labels(domains["mnistm"], 20, seed=0)
    npz = tmp_path / "target.npz"
    # a user's target: N x H x W x 3 uint8 at another size, no test split given
    np.savez(npz, x=xs.permute(0, 2, 3, 1).numpy()[:, 2:30, 2:30], y=ys.numpy())
    out = tmp_path / "adapt.json"
    code = main(["adapt", "--source", "mnist", "--target", f"npz:{npz}", "--method", "dann", "--steps", "20",
                 "--seeds", "0", "--device", "cpu", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["command"] == "adapt" and result["config"]["method"] == "dann" and result["config"]["steps"] == 20
    assert set(result["runs"][0]) == {
        "seed", "target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1", "seconds",
    }
    assert "target accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("arrays, message", [
    ({"x": "images"}, "lacks array"),
    ({"x": "images", "y": "short"}, "labels have"),
    ({"x": "images", "y": "three-classes"}, "same classes"),
    ({"x": "tiny", "y": "labels"}, "at least 8x8"),
])
def test_adapt_bad_input_is_one_line(tmp_path, domains, capsys, arrays, message):
    import numpy as np

    from datl_helpers.cli.main import main

    n = 40
    values = {
        "images": np.zeros((n, 28, 28), np.uint8), "tiny": np.zeros((n, 4, 4), np.uint8),
        "labels": np.arange(n) % 10, "short": np.arange(n - 1) % 10, "three-classes": np.arange(n) % 3,
    }
    npz = tmp_path / "bad.npz"
    np.savez(npz, **{k: values[v] for k, v in arrays.items()})
    code = main(["adapt", "--source", "mnist", "--target", f"npz:{npz}", "--steps", "5", "--seeds", "0",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not any(p.suffix == ".json" for p in tmp_path.iterdir())  # nothing written


def test_proxy_a_distance_separable_vs_identical():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(300, 16, generator=g)
    assert selection.proxy_a_distance(a, a + 5.0) > 1.9  # shifted: trivially separable
    assert selection.proxy_a_distance(a[:150], a[150:]) < 0.3  # two halves of one distribution


def test_selection_criteria_and_choose(domains):
    model, _, _ = dann.fit(domains["mnist"], domains["mnistm"], "dann", QUICK, seed=0, device="cpu")
    crit = selection.selection_criteria(model, domains["mnist"], domains["mnistm"], n=200, device="cpu")
    assert set(crit) == set(selection.CRITERIA)
    assert 0 <= crit["source_val_accuracy"] <= 1 and 0 <= crit["target_accuracy"] <= 1
    assert 0 <= crit["target_entropy"] <= math.log(10) + 1e-6
    assert math.isfinite(crit["dev_risk"])
    rows = [
        {"candidate": "a", "source_val_accuracy": 0.99, "target_entropy": 0.9, "dev_risk": 2.0, "target_accuracy": 0.6},
        {"candidate": "b", "source_val_accuracy": 0.97, "target_entropy": 0.2, "dev_risk": 0.5, "target_accuracy": 0.9},
    ]
    picks = selection.choose(rows)
    assert picks["source_val_accuracy"]["picked"] == "a"
    assert picks["target_entropy"]["picked"] == picks["dev_risk"]["picked"] == picks["target_accuracy"]["picked"] == "b"


def test_dev_risk_with_identical_domains_is_the_source_loss(domains):
    model, _, _ = dann.fit(domains["mnist"], domains["mnistm"], "source-only", QUICK, seed=0, device="cpu")
    x, y = domains["mnist"].x_test[:300], domains["mnist"].y_test[:300]
    loss = torch.nn.functional.cross_entropy(dann.train.predict_logits(model, x, device="cpu"), y).item()
    # target = the same images: the weights are ~1, so DEV is close to the plain validation loss
    assert selection.dev_risk(model, (x, y), x, device="cpu") == pytest.approx(loss, rel=0.15)


def test_results_table_and_gap_closed():
    rows = [{"pair": "s -> t", "method": m, "seed": s, "target_accuracy": acc + 0.01 * s}
            for m, acc in (("source-only", 0.5), ("dann", 0.8), ("target-oracle", 0.9)) for s in (0, 1)]
    table = dann.results_table(rows)
    assert list(table.columns) == ["source-only", "dann", "target-oracle", "gap closed"]
    assert table.loc["s -> t", "gap closed"] == "75%"
    assert dann.gap_closed(0.5, 0.8, 0.9) == pytest.approx(0.75)


# --------------------------------------------------------------------------------------------
# The paper's protocol from random weights (adapt --init scratch)
# --------------------------------------------------------------------------------------------


def test_paper_network_is_the_papers():
    from datl_helpers import models

    torch.manual_seed(0)
    net = models.PaperNet()
    x = torch.rand(4, 3, 32, 32)
    assert net.features(x).shape == (4, 768)  # 48 x 4 x 4 on the centre 28 x 28, as in the paper
    assert net(x).shape == (4, 10)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (48, (5, 5))]
    assert [m.out_features for m in net.head if isinstance(m, torch.nn.Linear)] == [100, 100, 10]
    border = x.clone()
    border[..., :2, :] = 1.0  # pixels outside the centre 28 x 28 are not seen
    assert torch.equal(net(border), net(x))


def test_paper_network_pools_before_relu_with_the_papers_numbers():
    """PaperNet applies ReLU after max-pooling (cheaper); the paper's order conv -> ReLU -> pool
    built from the same layers gives the same features and the same gradients, bit for bit."""
    from datl_helpers import models

    torch.manual_seed(0)
    net = models.PaperNet()
    crop, conv1, pool1, relu1 = net.stages.conv1
    conv2, pool2, relu2 = net.stages.conv2
    papers = torch.nn.Sequential(net.normalize, crop, conv1, relu1, pool1, conv2, relu2, pool2,
                                 torch.nn.Flatten())
    x = torch.rand(8, 3, 32, 32)
    ours = net.features(x)
    ours.square().sum().backward()
    grads = [p.grad.clone() for p in net.stages.parameters()]
    net.zero_grad()
    theirs = papers(x)
    theirs.square().sum().backward()
    assert torch.equal(ours, theirs)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, net.stages.parameters()))


def test_paper_config_builds_the_papers_optimizer_and_domain_classifier(domains):
    config = dann.paper_config(100)
    assert (config.pretrained, config.network, config.optimizer, config.lambda_max, config.lr) == (
        False, "paper", "sgd", 1.0, 0.01)
    assert dann.paper_config(100, lambda_max=0.5).lambda_max == 0.5
    model, disc, opt = dann.build_networks(10, config, torch.device("cpu"), fast=False)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    assert [m.out_features for m in disc.net if isinstance(m, torch.nn.Linear)] == [100, 1]
    assert model.feature_dim == 768 and disc.net[0].in_features == 768
    _, course_disc, _ = dann.build_networks(10, dann.DannConfig(), torch.device("cpu"), fast=False)
    assert [m.out_features for m in course_disc.net if isinstance(m, torch.nn.Linear)] == [256, 256, 1]
    with pytest.raises(DatlError, match="optimizer"):
        dann.fit(domains["mnist"], domains["mnistm"], "dann", dann.paper_config(5, optimizer="adam"))


def test_paper_protocol_trains_reproducibly(domains):
    config = dann.paper_config(40, batch_size=32, log_every=10)
    runs = [dann.fit(domains["mnist"], domains["mnistm"], "dann", config, seed=3, device="cpu")
            for _ in range(2)]
    (m1, _, h1), (m2, _, h2) = runs
    assert h1.records == h2.records and h1["lambda"][-1] > 0.9  # lambda rises to the paper's 1
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_adapt_init_scratch(tmp_path, capsys):
    import json

    from datl_helpers.cli.main import main

    out = tmp_path / "scratch.json"
    assert main(["adapt", "--source", "mnist", "--target", "mnistm", "--init", "scratch", "--steps", "6",
                 "--seeds", "0", "--device", "cpu", "--json", str(out)]) == 0
    config = json.loads(out.read_text())["config"]
    assert (config["network"], config["optimizer"], config["pretrained"], config["lambda_max"]) == (
        "paper", "sgd", False, 1.0)
    capsys.readouterr()
    assert main(["adapt", "--source", "mnist", "--target", "mnistm", "--init", "scratch", "--method", "adabn",
                 "--steps", "6", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--init scratch" in err and len(err.strip().splitlines()) == 1


def test_a_dann_run_shows_its_steps_unless_quiet(domains, capsys, monkeypatch):
    config = dann.DannConfig(steps=4, batch_size=8, log_every=2)
    for name in ("CI", "DATL_QUIET", "TQDM_DISABLE"):
        monkeypatch.delenv(name, raising=False)
    dann.fit(domains["mnist"], domains["mnistm"], "dann", config, device="cpu")
    err = capsys.readouterr().err
    assert "dann steps" in err and "/4 " in err  # one bar over the run's steps
    monkeypatch.setenv("TQDM_DISABLE", "1")
    dann.fit(domains["mnist"], domains["mnistm"], "dann", config, device="cpu")
    assert "dann steps" not in capsys.readouterr().err


def test_the_domain_adversarial_loss_is_one_object():
    """DomainClassifier.loss: the BCE of its logits against 0 (source rows) / 1 (target rows), through the
    reversal layer: the features receive the loss's gradient times -lambda (images, text and moons use it)."""
    import torch.nn.functional as F

    from datl_helpers.adaptation.adversarial import DomainClassifier, domain_labels

    torch.manual_seed(0)
    disc = DomainClassifier(6, hidden=5)
    disc.reverse.coeff = 0.3
    feats = torch.randn(7, 6, requires_grad=True)
    out = disc.loss(feats, n_source=3)
    assert out.labels.tolist() == [0, 0, 0, 1, 1, 1, 1] and torch.equal(out.labels, domain_labels(3, 4))
    torch.testing.assert_close(out.loss, F.binary_cross_entropy_with_logits(disc(feats), out.labels))
    out.loss.backward()
    reversed_grad = feats.grad.clone()
    feats.grad = None
    plain = F.binary_cross_entropy_with_logits(disc.net(feats).squeeze(1), out.labels)
    plain.backward()
    torch.testing.assert_close(reversed_grad, -0.3 * feats.grad)
