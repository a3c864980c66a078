"""AdaBN: re-estimated BatchNorm statistics, checked against the statistics computed directly."""

from __future__ import annotations

import json

import pytest
import torch

from datl_helpers import adaptation, batchnorm, dann, models, selection
from datl_helpers.cli.main import main
from datl_helpers.core.domain import to_float
from datl_helpers.core.errors import ChoiceError, DatlError, TooFewSamplesError


def _first_bn_input(model: models.StagedNet, x: torch.Tensor) -> torch.Tensor:
    """What the first BatchNorm layer receives for images ``x``: normalise, convolve, pool."""
    conv, pool = model.stages.conv1[0], model.stages.conv1[1]
    with torch.no_grad():
        return pool(conv(model.normalize(to_float(x))))


def test_adabn_first_layer_statistics_are_the_target_images_own():
    torch.manual_seed(0)
    model = models.replace_head(models.load_pretrained(), 10, dropout=0.5)
    x = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    first = batchnorm.batchnorm_layers(model)[0]
    inputs = _first_bn_input(model, x)  # no BatchNorm before it, so AdaBN does not change it
    batchnorm.adabn(model, x, batch_size=128, device="cpu")
    dims = [0, 2, 3]
    assert torch.allclose(first.running_mean, inputs.mean(dims), atol=1e-4)
    # BatchNorm keeps the unbiased variance of each batch; the cumulative average of three batches
    # is close to, not exactly, the variance over all images
    assert torch.allclose(first.running_var, inputs.var(dims), rtol=2e-2, atol=1e-4)
    assert first.momentum == 0.1 and not model.training  # momentum restored, eval mode
    for k, v in model.state_dict().items():  # no weight moved
        if k in weights:
            assert torch.equal(v, weights[k]), k
    with torch.no_grad():  # dropout is off: the same images give the same logits
        a, b = model(to_float(x[:8])), model(to_float(x[:8]))
    assert torch.equal(a, b)


def test_adabn_statistics_follow_the_domain(domains):
    model = models.load_pretrained()
    last = batchnorm.batchnorm_layers(model)[-1]
    batchnorm.adabn(model, domains["mnist"].x_train[:512], device="cpu")
    on_mnist = last.running_mean.clone()
    batchnorm.adabn(model, domains["mnistm"].x_train[:512], device="cpu")
    assert not torch.allclose(on_mnist, last.running_mean, atol=1e-3)
    with pytest.raises(TooFewSamplesError, match="at least 2"):
        batchnorm.adabn(model, domains["mnist"].x_train[:1], device="cpu")


def test_run_method_dispatches_and_checks_the_name(domains):
    config = dann.DannConfig(steps=3, batch_size=16, log_every=1)
    row = adaptation.run_method(domains["mnist"], domains["mnistm"], "adabn", seed=0, config=config, device="cpu")
    assert {"target_accuracy", "source_accuracy", "domain_accuracy", "macro_f1", "seconds"} <= set(row)
    again = adaptation.run_method(domains["mnist"], domains["mnistm"], "adabn", seed=0, config=config, device="cpu")
    assert row["target_accuracy"] == again["target_accuracy"]  # seeded
    with pytest.raises(ChoiceError, match="choose from source-only, dann, target-oracle, adabn, coral"):
        adaptation.run_method(domains["mnist"], domains["mnistm"], "coral?", config=config, device="cpu")


def test_adapt_command_runs_adabn(tmp_path, capsys):
    out = tmp_path / "adabn.json"
    assert main(["adapt", "--source", "mnist", "--target", "mnistm", "--method", "adabn", "--steps", "3",
                 "--seeds", "0", "--device", "cpu", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["config"]["method"] == "adabn" and len(payload["runs"]) == 1
    assert "adabn mnist -> mnistm" in capsys.readouterr().out


def test_coral_loss_matches_numpy_covariances():
    import numpy as np

    g = torch.Generator().manual_seed(0)
    fs, ft = torch.randn(64, 5, generator=g), 2 * torch.randn(48, 5, generator=g) + 1
    expected = ((np.cov(fs.numpy(), rowvar=False) - np.cov(ft.numpy(), rowvar=False)) ** 2).sum() / (4 * 5 * 5)
    assert adaptation.coral_loss(fs, ft).item() == pytest.approx(expected, rel=1e-5)
    assert adaptation.coral_loss(fs, fs + 3.0).item() == pytest.approx(0.0, abs=1e-6)  # a shift of the mean is not seen
    fs.requires_grad_(True)
    adaptation.coral_loss(fs, ft).backward()
    assert fs.grad is not None and fs.grad.abs().sum() > 0


def test_coral_training_shrinks_the_covariance_gap(domains):
    from datl_helpers.transfer.features import extract_features

    config = dann.DannConfig(steps=30, batch_size=32, log_every=10)
    src, tgt = domains["mnist"], domains["mnistm"]

    def gap(model):
        fs = extract_features(model, src.x_test[:300], device="cpu")
        ft = extract_features(model, tgt.x_test[:300], device="cpu")
        return adaptation.coral_loss(fs, ft).item()

    plain, _, _ = dann.fit(src, tgt, "source-only", config, seed=0, device="cpu")
    aligned, _, _ = dann.fit(src, tgt, "source-only", config, seed=0, device="cpu",
                                    extra_loss=lambda f, _, n: 100.0 * adaptation.coral_loss(f[:n], f[n:]))
    assert gap(aligned) < gap(plain)
    row = adaptation.run_method(src, tgt, "coral", seed=0, config=dann.DannConfig(steps=3, batch_size=16), device="cpu")
    assert 0 <= row["target_accuracy"] <= 1 and row["seed"] == 0


def test_entropy_loss_is_zero_when_confident_and_log_k_when_uniform():
    assert adaptation.entropy_loss(torch.tensor([[100.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert adaptation.entropy_loss(torch.zeros(4, 10)).item() == pytest.approx(torch.log(torch.tensor(10.0)).item())
    probs = torch.tensor([[0.7, 0.2, 0.1]])  # against scipy's entropy of the same distribution
    from scipy.stats import entropy

    assert adaptation.entropy_loss(probs.log()).item() == pytest.approx(entropy(probs[0].numpy()), rel=1e-6)


def test_entropy_training_makes_target_predictions_confident(domains):
    config = dann.DannConfig(steps=30, batch_size=32, log_every=10)
    src, tgt = domains["mnist"], domains["mnistm"]
    plain, _, _ = dann.fit(src, tgt, "source-only", config, seed=0, device="cpu")
    sharp, _, _ = dann.fit(src, tgt, "source-only", config, seed=0, device="cpu",
                                  extra_loss=lambda _, logits, n: 1.0 * adaptation.entropy_loss(logits[n:]))
    x = tgt.x_test[:300]
    assert selection.prediction_entropy(sharp, x, device="cpu") < selection.prediction_entropy(plain, x, device="cpu")
    row = adaptation.run_method(src, tgt, "entropy", seed=0, config=dann.DannConfig(steps=3, batch_size=16), device="cpu")
    assert 0 <= row["target_accuracy"] <= 1 and row["seed"] == 0


def test_adapt_runs_on_an_online_pair_from_local_torchvision_files(tmp_data_dir, domains, capsys):
    """usps laid out as torchvision expects (bz2 libsvm files of 16x16 images in [-1, 1]), made from
    real mnist digits; `adapt mnist -> usps` goes through the same code path as the offline pairs."""
    import bz2

    import torch.nn.functional as F

    root = tmp_data_dir / "torchvision"
    root.mkdir(parents=True)
    mnist = domains["mnist"]
    for name, (x, y) in (("usps.bz2", (mnist.x_train[:40], mnist.y_train[:40])),
                         ("usps.t.bz2", (mnist.x_test[::50], mnist.y_test[::50]))):
        grey = F.interpolate(to_float(x).mean(1, keepdim=True), size=16, mode="area")[:, 0] * 2 - 1
        lines = [f"{int(label) + 1} " + " ".join(f"{j + 1}:{v:.4f}" for j, v in enumerate(img.flatten().tolist()))
                 for img, label in zip(grey, y)]
        with bz2.open(root / name, "wt") as f:
            f.write("\n".join(lines) + "\n")
    out = tmp_data_dir / "usps.json"
    assert main(["adapt", "--source", "mnist", "--target", "usps", "--method", "dann", "--steps", "6",
                 "--seeds", "0", "--json", str(out)]) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert 0 <= run["target_accuracy"] <= 1 and "dann mnist -> usps" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Semi-supervised DANN: a few labelled target images beside the unlabelled ones
# --------------------------------------------------------------------------------------------


def test_dann_step_label_loss_covers_the_labelled_rows():
    torch.manual_seed(0)
    model = models.load_pretrained()
    disc = dann.DomainClassifier(model.feature_dim)
    opt = torch.optim.SGD([*model.parameters(), *disc.parameters()], lr=0.0)  # lr 0: only the losses matter
    batch, labels = torch.rand(12, 3, 32, 32), torch.arange(7) % 10  # 4 source, 3 labelled target, 5 unlabelled
    model.eval()
    label_loss, *_ = dann.dann_step(model, disc, opt, batch, labels, 4, fast=False, n_labelled=7)
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(batch)[:7], labels)
    assert label_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_semi_supervised_uses_the_few_labels_fine_tuning_gets(domains, monkeypatch):
    from datl_helpers import data

    seen = {}
    real = dann.fit

    def spy(*args, labelled_target=None, **kwargs):
        seen["x"], seen["y"] = labelled_target
        return real(*args, labelled_target=labelled_target, **kwargs)

    monkeypatch.setattr(dann, "fit", spy)
    config = dann.DannConfig(steps=4, batch_size=16, log_every=2)
    row = adaptation.run_semi_supervised(domains["mnist"], domains["mnistm"], 2, seed=5, config=config, device="cpu")
    x, y = data.few_labels(domains["mnistm"], 2, seed=5)
    assert torch.equal(seen["x"], x) and torch.equal(seen["y"], y) and row["target_labels"] == 2
    again = adaptation.run_semi_supervised(domains["mnist"], domains["mnistm"], 2, seed=5, config=config, device="cpu")
    assert again["target_accuracy"] == row["target_accuracy"]  # same seed, same numbers
    with pytest.raises(DatlError, match="target-oracle"):
        real(domains["mnist"], domains["mnistm"], "target-oracle", config, labelled_target=(x, y))
    with pytest.raises(DatlError, match="choose from"):
        adaptation.run_semi_supervised(domains["mnist"], domains["mnistm"], 2, method="coral", config=config)


def test_adapt_target_labels_command(tmp_path, capsys):
    out = tmp_path / "semi.json"
    assert main(["adapt", "--source", "mnist", "--target", "mnistm", "--target-labels", "1", "--steps", "4",
                 "--seeds", "0", "--device", "cpu", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["config"]["target_labels"] == 1
    assert "+ 1 target labels/class" in capsys.readouterr().out
    assert main(["adapt", "--source", "mnist", "--target", "mnistm", "--target-labels", "-1", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--target-labels" in err and len(err.strip().splitlines()) == 1
