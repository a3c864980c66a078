from __future__ import annotations

import pytest
import torch

from datl_helpers import data, models, train
from datl_helpers.core.errors import DatlError, DeviceError


def test_resolve_device():
    assert train.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert train.resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(DeviceError, match='DEVICE="auto"'):
        train.resolve_device("cuda")


def test_unknown_device():
    with pytest.raises(DeviceError, match="unknown device"):
        train.resolve_device("tpu")


def test_index_batches_cover_every_index_each_pass():
    g = torch.Generator().manual_seed(0)
    it = train.index_batches(10, 4, g)
    first_pass = torch.cat([next(it), next(it)])
    assert len(first_pass) == 8 and len(set(first_pass.tolist())) == 8
    small = train.index_batches(3, 8, g)
    assert sorted(next(small).tolist()) == [0, 1, 2]


def test_index_batches_are_the_same_on_every_device():
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for dev in devices:
        plain = train.index_batches(10, 4, torch.Generator().manual_seed(3))
        moved = train.index_batches(10, 4, torch.Generator().manual_seed(3), device=torch.device(dev))
        for _ in range(5):
            idx = next(moved)
            assert idx.device.type == dev and torch.equal(idx.cpu(), next(plain))


def _small(domains):
    d = domains["digits"]
    x, y = data.few_labels(d, 30, seed=0)
    return d, x, y


def _fit(x, y, seed, **kwargs):
    train.seed_everything(seed)
    net = models.DigitNet()
    config = train.FitConfig(epochs=3, steps_per_epoch=5, batch_size=64, lr=3e-3)
    history = train.fit(net, x, y, config, seed=seed, device="cpu", **kwargs)
    return net, history


def test_fit_learns_and_records_history(domains):
    d, x, y = _small(domains)
    _net, history = _fit(x, y, seed=0, x_val=d.x_test, y_val=d.y_test)
    assert len(history) == 3 and history.seconds > 0
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history.last["val_accuracy"] > 0.5  # 300 labels, 15 steps from scratch: well above chance (0.1)
    assert history.best()["val_accuracy"] == max(history["val_accuracy"])
    assert list(history.to_frame().columns)[:2] == ["epoch", "train_loss"]


def test_fit_same_seed_same_numbers(domains):
    _, x, y = _small(domains)
    _, h1 = _fit(x, y, seed=1)
    _net2, h2 = _fit(x, y, seed=1)
    _, h3 = _fit(x, y, seed=2)
    assert h1["train_loss"] == h2["train_loss"]
    assert h1["train_loss"] != h3["train_loss"]


def test_fit_uses_param_groups_penalty_and_hooks(domains):
    _, x, y = _small(domains)
    net = models.load_pretrained()
    models.freeze_stages(net, 4)
    before = net.stages.conv1[0].weight.clone()
    calls = {"penalty": 0, "start": [], "end": []}

    def penalty(model):
        calls["penalty"] += 1
        return 0.0 * sum(p.sum() for p in model.head.parameters())

    def on_end(epoch, model, record):
        calls["end"].append(epoch)
        record["custom"] = epoch * 10

    history = train.fit(
        net, x, y, train.FitConfig(epochs=2, steps_per_epoch=3), param_groups=models.stage_param_groups(net, lr=1e-2),
        penalty=penalty, on_epoch_start=lambda e, m: calls["start"].append(e), on_epoch_end=on_end, device="cpu",
    )
    assert torch.equal(before, net.stages.conv1[0].weight)  # frozen stages do not move
    assert calls == {"penalty": 6, "start": [0, 1], "end": [0, 1]}
    assert history["custom"] == [0, 10]


def test_transform_is_applied_in_training_only(domains):
    _, x, y = _small(domains)
    seen = []

    def transform(xb):
        seen.append(xb.shape[0])
        assert xb.dtype == torch.float32 and xb.min() >= 0 and xb.max() <= 1
        return xb

    net, _ = _fit(x, y, seed=0, transform=transform)
    assert len(seen) == 15
    train.evaluate(net, x, y, device="cpu")
    assert len(seen) == 15


def test_predict_and_evaluate(domains):
    d = domains["digits"]
    net = models.load_pretrained()
    logits = train.predict_logits(net, d.x_test[:10], device="cpu", batch_size=4)
    assert logits.shape == (10, 10)
    assert torch.equal(train.predict(net, d.x_test[:10], device="cpu"), logits.argmax(1))
    result = train.evaluate(net, d.x_test, d.y_test, device="cpu")
    assert set(result) == {"loss", "accuracy"} and 0 <= result["accuracy"] <= 1


def test_bad_options():
    x = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    y = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="schedule"):
        train.fit(models.DigitNet(), x, y, train.FitConfig(epochs=1, schedule="linear"), device="cpu")
    with pytest.raises(ValueError, match="optimizer"):
        train.fit(models.DigitNet(), x, y, train.FitConfig(epochs=1, optimizer="lion"), device="cpu")
    for budget in (train.FitConfig(epochs=0), train.FitConfig(steps_per_epoch=0)):
        with pytest.raises(DatlError, match="nothing would be trained"):
            train.fit(models.DigitNet(), x, y, budget, device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_on_cuda(domains):
    _, x, y = _small(domains)
    net = models.DigitNet()
    history = train.fit(net, x, y, train.FitConfig(epochs=2, steps_per_epoch=5), device="cuda")
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_early_stopping_and_restore_best(domains):
    d, x, y = _small(domains)
    net = models.DigitNet()
    config = train.FitConfig(epochs=8, steps_per_epoch=2, lr=0.3, patience=2, restore_best=True)
    history = train.fit(net, x, y, config, x_val=d.x_test[:200], y_val=d.y_test[:200], seed=0, device="cpu")
    best = history.best()
    assert history.best_epoch == best["epoch"]
    if len(history) < 8:
        assert history.last.get("stopped_early") and len(history) - history.best_epoch == 2
    # the restored weights are those of the best epoch
    restored = train.evaluate(net, d.x_test[:200], d.y_test[:200], device="cpu")["accuracy"]
    assert restored == pytest.approx(best["val_accuracy"])
    with pytest.raises(ValueError, match="needs x_val"):
        train.fit(models.DigitNet(), x, y, train.FitConfig(epochs=1, patience=1), device="cpu")


def test_progress_bar_counts_steps_and_respects_tqdm_disable(capsys, monkeypatch):
    model = models.DigitNet(num_classes=10)
    x = torch.randint(0, 255, (32, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (32,))
    train.fit(model, x, y, train.FitConfig(epochs=2, steps_per_epoch=3, batch_size=16), device="cpu", progress=True)
    err = capsys.readouterr().err
    assert "steps (2 epochs)" in err and "/6 " in err  # one bar over all 6 steps, not over 2 epochs
    for name in ("CI", "DATL_QUIET", "TQDM_DISABLE"):
        monkeypatch.delenv(name, raising=False)
    assert not train.quiet()
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert train.quiet()


def test_mps_is_accepted_wherever_cuda_is(monkeypatch):
    """Apple silicon: "mps" is a device for the notebooks and the commands, as "cuda" is (MPS mocked)."""
    from datl_helpers import runner
    from datl_helpers.cli.main import build_parser

    assert {"cuda", "mps"} <= set(runner.DEVICES)
    assert build_parser().parse_args(["run-notebooks", "--out", "x", "--device", "mps"]).device == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="Apple MPS is not available"):
        train.resolve_device("mps")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert train.resolve_device("mps") == torch.device("mps")
    assert train.resolve_device("auto") == torch.device("mps")
