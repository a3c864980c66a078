from __future__ import annotations

import json
import shutil
from urllib.error import URLError

import pytest
import torch

from datl_helpers import models, train
from datl_helpers.core.errors import CheckpointError, DataUnavailableError


def test_digitnet_stages_and_shapes():
    net = models.DigitNet()
    assert net.stage_names == ["conv1", "conv2", "conv3", "fc"]
    x = torch.rand(4, 3, 32, 32)
    assert net(x).shape == (4, 10)
    dims = {s: net.features(x, stage=s).shape[1] for s in net.stage_names}
    assert dims == {"conv1": 32 * 16 * 16, "conv2": 48 * 8 * 8, "conv3": 96 * 4 * 4, "fc": 128}
    assert torch.equal(net.features(x), net.features(x, stage="fc"))
    with pytest.raises(ValueError, match="unknown stage"):
        net.features(x, stage="conv9")


def test_freeze_first_k_stages():
    net = models.DigitNet()
    frozen = models.freeze_stages(net, 2)
    assert frozen == ["conv1", "conv2"]
    trainable = {n.split(".")[1] for n, p in net.named_parameters() if p.requires_grad and n.startswith("stages")}
    assert trainable == {"conv3", "fc"}
    assert all(p.requires_grad for p in net.head.parameters())
    models.freeze_stages(net, 4)
    assert models.count_parameters(net, trainable_only=True) == sum(p.numel() for p in net.head.parameters())
    models.freeze_stages(net, 0)
    assert models.count_parameters(net, trainable_only=True) == models.count_parameters(net)
    with pytest.raises(ValueError, match="between 0 and 4"):
        models.freeze_stages(net, 5)


def test_stage_param_groups_layerwise_lr():
    net = models.DigitNet()
    models.freeze_stages(net, 1)
    groups = models.stage_param_groups(net, lr=1e-2, decay=0.5, stage_lrs={"conv2": 1e-5})
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs == {"conv2": 1e-5, "conv3": 1e-2 * 0.5**2, "fc": 1e-2 * 0.5, "head": 1e-2}
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == models.count_parameters(net, trainable_only=True)
    with pytest.raises(ValueError, match="unknown stage"):
        models.stage_param_groups(net, lr=1e-3, stage_lrs={"layer9": 1.0})


def test_replace_head():
    net = models.DigitNet()
    models.replace_head(net, 5, dropout=0.3)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 5)
    assert isinstance(net.head[0], torch.nn.Dropout)


@pytest.mark.parametrize("name, stages, dim", [
    ("resnet18", ["stem", "layer1", "layer2", "layer3", "layer4"], 512),
    ("mobilenet_v3_small", ["stem", "block1", "block2", "block3"], 576),
])
def test_torchvision_backbones_share_the_stage_api(name, stages, dim):
    net = models.torchvision_backbone(name, num_classes=7)
    assert net.stage_names == stages and net.feature_dim == dim
    net.eval()
    x = torch.rand(2, 3, 32, 32)
    assert net(x).shape == (2, 7) and net.features(x).shape == (2, dim)
    models.freeze_stages(net, len(stages) - 1)
    groups = models.stage_param_groups(net, lr=1e-3)
    assert [g["name"] for g in groups] == [stages[-1], "head"]
    assert torch.allclose(net.normalize.mean.flatten(), torch.tensor(models.IMAGENET_MEAN))


def test_imagenet_weights_offline_is_a_clear_error(monkeypatch):
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise URLError("no internet")

    monkeypatch.setattr(api.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(DataUnavailableError, match="internet"):
        models.torchvision_backbone("resnet18", weights="imagenet")


def test_shipped_checkpoint_loads_and_matches_metadata(domains):
    net = models.load_pretrained()
    info = models.pretrained_info()
    assert info["config"]["widths"] == [32, 48, 96]
    # the recorded accuracies are reproduced by evaluating the shipped weights now
    for name in ("syn", "mnist", "digits"):
        acc = train.evaluate(net, domains[name].x_test, domains[name].y_test, device="cpu")["accuracy"]
        assert acc == pytest.approx(info["test_accuracy"][name], abs=0.002), name
    assert info["test_accuracy"]["syn"] > 0.9


def _copy_weights(tmp_path):
    for path in models.pretrained_paths():
        shutil.copy(path, tmp_path / path.name)
    return models.pretrained_paths(weights_dir=tmp_path)


def test_tampered_checkpoint_is_refused(tmp_path):
    ckpt, _ = _copy_weights(tmp_path)
    raw = bytearray(ckpt.read_bytes())
    raw[-100] ^= 0x01
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="sha256"):
        models.load_pretrained(weights_dir=tmp_path)


def test_checkpoint_problems_are_clear_errors(tmp_path):
    _ckpt, meta = _copy_weights(tmp_path)
    info = json.loads(meta.read_text())
    info["config"]["widths"] = [8, 8, 8]
    meta.write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="does not fit"):
        models.load_pretrained(weights_dir=tmp_path)
    meta.write_text("{broken")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        models.load_pretrained(weights_dir=tmp_path)
    meta.unlink()
    with pytest.raises(CheckpointError, match="pretrain_backbone"):
        models.load_pretrained(weights_dir=tmp_path)
