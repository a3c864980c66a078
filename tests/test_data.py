from __future__ import annotations

import bz2
import struct
from urllib.error import URLError

import numpy as np
import pytest
import torch

from datl_helpers import cache, data
from datl_helpers.core.errors import BadDataError, DataUnavailableError, TooFewSamplesError, UnknownDomainError

EXPECTED_SIZES = {"syn": (40_000, 8_000), "mnist": (4_000, 1_000), "mnistm": (4_000, 1_000), "digits": (1_437, 360)}


# ---------------------------------------------------------------- the offline domains


@pytest.mark.parametrize("name", data.OFFLINE_DOMAINS)
def test_offline_domain_format(domains, name):
    d = domains[name]
    assert (len(d.y_train), len(d.y_test)) == EXPECTED_SIZES[name] == data.KNOWN_SIZES[name]
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        assert x.dtype == torch.uint8 and tuple(x.shape[1:]) == (3, 32, 32) and len(x) == len(y)
        assert y.dtype == torch.int64 and set(y.unique().tolist()) == set(range(10))
    # stratified: every class has (almost) the same share in train and test
    share_train = torch.bincount(d.y_train) / len(d.y_train)
    share_test = torch.bincount(d.y_test) / len(d.y_test)
    assert torch.allclose(share_train, share_test, atol=0.01)
    for key in ("title", "source", "licence", "recipe", "builder_version"):
        assert d.card[key], key


def test_grey_domains_are_grey_and_mnistm_is_coloured(domains):
    for name in ("mnist", "digits"):
        x = domains[name].x_test
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    x = domains["mnistm"].x_test.float()
    assert (x[:, 0] - x[:, 1]).abs().mean() > 5


def test_mnistm_is_built_over_the_mnist_split(domains):
    assert torch.equal(domains["mnist"].y_train, domains["mnistm"].y_train)
    assert torch.equal(domains["mnist"].y_test, domains["mnistm"].y_test)


def test_mnistm_recipe_is_abs_difference():
    digits = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    digits[:, :, 10:20, 10:20] = 255
    photo = np.full((40, 50, 3), 100, dtype=np.uint8)
    out = data.blend_mnistm(digits, [photo], seed=0)
    assert out[0, 0, 0, 0] == 100 and out[0, 0, 15, 15] == 155
    assert torch.equal(out, data.blend_mnistm(digits, [photo], seed=0))


def test_syn_renderer_is_deterministic_and_balanced():
    from datl_helpers.data.synth import font_paths, render_digits

    x1, y1, fonts = render_digits(60, seed=3)
    x2, y2, _ = render_digits(60, seed=3)
    x3, _, _ = render_digits(60, seed=4)
    assert torch.equal(x1, x2) and np.array_equal(y1, y2)
    assert not torch.equal(x1, x3)
    assert np.bincount(y1).tolist() == [6] * 10
    assert x1.shape == (60, 3, 32, 32) and x1.dtype == torch.uint8
    assert len(fonts) == len(font_paths()) >= 10
    assert "cmsy10" not in fonts and "cmex10" not in fonts  # symbol fonts have no digits
    # digits are visible: every image has contrast
    assert (x1.float().flatten(1).std(dim=1) > 5).all()


def test_to_common_format_handles_layouts():
    grey = np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8)
    out = data.to_common_format(grey)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.uint8
    rgb = np.random.default_rng(0).integers(0, 256, (4, 40, 20, 3), dtype=np.uint8)
    assert data.to_common_format(rgb).shape == (4, 3, 32, 32)
    same = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert torch.equal(data.to_common_format(same), torch.from_numpy(same).permute(0, 3, 1, 2))
    with pytest.raises(BadDataError, match="uint8"):
        data.to_common_format(grey.astype(np.float32))


# ---------------------------------------------------------------- few labels


def test_few_labels_is_stratified_and_seeded(domains):
    d = domains["digits"]
    x, y = data.few_labels(d, 5, seed=0)
    assert torch.bincount(y).tolist() == [5] * 10 and len(x) == 50
    x2, _y2 = data.few_labels(d, 5, seed=0)
    x3, _ = data.few_labels(d, 5, seed=1)
    assert torch.equal(x, x2) and not torch.equal(x, x3)
    assert len(data.few_labels(d, None, seed=0)[1]) == len(d.y_train)


def test_few_labels_too_many_is_a_clear_error(domains):
    with pytest.raises(TooFewSamplesError, match=r"labels_per_class=1000.*class \d+ has only \d+.*<= \d+"):
        data.few_labels(domains["digits"], 1000, seed=0)
    with pytest.raises(TooFewSamplesError, match="at least 1"):
        data.few_label_indices(torch.tensor([0, 1]), 0, seed=0)


# ---------------------------------------------------------------- registry and cache


def test_unknown_domain_lists_valid_names():
    with pytest.raises(UnknownDomainError) as err:
        data.load_domain("mnsit")
    message = str(err.value)
    for name in (*data.OFFLINE_DOMAINS, "npz:PATH"):
        assert name in message


def test_cache_is_written_with_manifest_and_reused(tmp_data_dir):
    d = data.load_domain("digits")
    assert data.cache_status("digits") == "cached"
    files = sorted(p.name for p in tmp_data_dir.iterdir())
    assert files == ["digits.json", "digits.npz"]  # no temporary files left behind
    again = data.load_domain("digits")
    assert torch.equal(d.x_train, again.x_train) and again.card["n_train"] == 1437


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_corrupted_cache_is_detected_and_rebuilt(tmp_data_dir, damage):
    original = data.load_domain("digits")
    npz, manifest = tmp_data_dir / "digits.npz", tmp_data_dir / "digits.json"
    if damage == "flip":
        raw = bytearray(npz.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        npz.write_bytes(bytes(raw))
    elif damage == "truncate":
        npz.write_bytes(npz.read_bytes()[:1000])
    else:
        manifest.write_text("{not json")
    assert data.cache_status("digits") == "corrupt"
    with pytest.warns(UserWarning, match="rebuilding"):
        rebuilt = data.load_domain("digits")
    assert torch.equal(rebuilt.x_train, original.x_train)
    assert data.cache_status("digits") == "cached"


def test_partial_cache_without_manifest_is_rebuilt(tmp_data_dir):
    data.load_domain("digits")
    (tmp_data_dir / "digits.json").unlink()
    assert data.cache_status("digits") == "missing"
    data.load_domain("digits")
    assert data.cache_status("digits") == "cached"


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        cache.atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


def test_domain_table_lists_every_domain(tmp_data_dir):
    rows = {r["name"]: r for r in data.domain_table()}
    assert set(rows) == set(data.domain_names())
    assert rows["syn"]["train"] == 40_000 and rows["syn"]["kind"] == "offline"
    assert rows["syn"]["status"] == "missing" and rows["usps"]["kind"] == "online"


# ---------------------------------------------------------------- npz:PATH


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_domain_grey_and_split(tmp_path):
    rng = np.random.default_rng(0)
    name = _npz(tmp_path / "d.npz", x=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y=np.arange(50) % 5)
    d = data.load_domain(name)
    assert d.x_train.shape[1:] == (3, 32, 32) and len(d.y_train) + len(d.y_test) == 50
    assert d.num_classes == 5 and torch.bincount(d.y_test).tolist() == [2] * 5


def test_npz_domain_rgb_with_test_split(tmp_path):
    rng = np.random.default_rng(0)
    name = _npz(
        tmp_path / "d.npz",
        x=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y=np.arange(20) % 10,
        x_test=rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8), y_test=np.arange(10),
    )
    d = data.load_domain(name)
    assert len(d.y_train) == 20 and len(d.y_test) == 10 and d.x_test.shape[1:] == (3, 32, 32)


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"x": np.zeros((4, 28, 28), np.uint8)}, "lacks array"),
        ({"x": np.zeros((4, 28, 28), np.float32), "y": np.arange(4)}, "uint8"),
        ({"x": np.zeros((4, 28), np.uint8), "y": np.arange(4)}, "shape"),
        ({"x": np.zeros((4, 28, 28), np.uint8), "y": np.arange(5)}, "4 images but its labels have 5"),
        ({"x": np.zeros((4, 28, 28), np.uint8), "y": np.array([0, 1, -1, 2])}, ">= 0"),
        ({"x": np.zeros((4, 4, 4), np.uint8), "y": np.arange(4)}, "at least 8x8"),
        ({"x": np.zeros((4, 28, 28), np.uint8), "y": np.array([0.0, 1, 2, 3])}, "integer"),
        ({"x": np.zeros((4, 28, 28), np.uint8), "y": np.array([0, 0, 1, 2])}, "at least 2 per class"),
    ],
)
def test_npz_domain_bad_input(tmp_path, arrays, message):
    with pytest.raises((BadDataError, TooFewSamplesError), match=message):
        data.load_domain(_npz(tmp_path / "bad.npz", **arrays))


def test_npz_missing_file(tmp_path):
    with pytest.raises(BadDataError, match="no npz file"):
        data.load_domain(f"npz:{tmp_path / 'nothing.npz'}")


# ---------------------------------------------------------------- folder:PATH


def _write_folder(root, classes=3, per_class=4, size=(20, 24)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / str(c)).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / str(c) / f"{i}.png")


def test_folder_domain_single_tree(tmp_path):
    _write_folder(tmp_path / "tree")
    d = data.load_domain(f"folder:{tmp_path / 'tree'}")
    assert len(d.y_train) + len(d.y_test) == 12 and d.x_train.shape[1:] == (3, 32, 32)
    assert d.card["classes"] == ["0", "1", "2"]


def test_folder_domain_train_test(tmp_path):
    _write_folder(tmp_path / "tree" / "train")
    _write_folder(tmp_path / "tree" / "test", per_class=2)
    d = data.load_domain(f"folder:{tmp_path / 'tree'}")
    assert (len(d.y_train), len(d.y_test)) == (12, 6)


def test_folder_domain_bad_input(tmp_path):
    with pytest.raises(BadDataError, match="no folder"):
        data.load_domain(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadDataError, match="image-folder"):
        data.load_domain(f"folder:{tmp_path / 'empty'}")


# ---------------------------------------------------------------- online domains, on tiny local files


def _write_idx(path, array: np.ndarray):
    magic = 0x0803 if array.ndim == 3 else 0x0801
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in array.shape))
        f.write(array.astype(np.uint8).tobytes())


def _tiny_mnist(root, n=20):
    raw = root / "torchvision" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)


def test_online_mnist_from_local_files(tmp_data_dir):
    _tiny_mnist(tmp_data_dir)
    status = {r["name"]: r["status"] for r in data.domain_table()}
    assert status["mnist_full"] == "on disk" and status["usps"] == "not downloaded"
    d = data.load_domain("mnist_full")
    assert d.x_train.shape == (20, 3, 32, 32) and d.y_test.tolist() == [i % 10 for i in range(20)]
    m = data.load_domain("mnistm_full")
    assert m.name == "mnistm_full" and m.x_train.shape == (20, 3, 32, 32)


def test_online_usps_from_local_files(tmp_data_dir):
    root = tmp_data_dir / "torchvision"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("usps.bz2", 12), ("usps.t.bz2", 6)):
        lines = []
        for i in range(n):
            values = rng.uniform(-1, 1, 256)
            lines.append(f"{i % 10 + 1} " + " ".join(f"{j + 1}:{v:.4f}" for j, v in enumerate(values)))
        with bz2.open(root / name, "wt") as f:
            f.write("\n".join(lines) + "\n")
    d = data.load_domain("usps")
    assert (len(d.y_train), len(d.y_test)) == (12, 6) and d.x_train.shape[1:] == (3, 32, 32)
    assert d.y_train.tolist()[:3] == [0, 1, 2]


def test_online_svhn_from_local_files(tmp_data_dir, monkeypatch):
    import scipy.io
    import torchvision.datasets as tvd

    root = tmp_data_dir / "torchvision"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 4)):
        scipy.io.savemat(root / f"{split}_32x32.mat", {
            "X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": (np.arange(n) % 10 + 1).reshape(-1, 1)})
    # torchvision checks the md5 of the real files; ours are tiny stand-ins in the same layout
    monkeypatch.setattr(tvd.SVHN, "_check_integrity", lambda self: True)
    d = data.load_domain("svhn")
    assert d.x_train.shape == (8, 3, 32, 32) and d.y_train.tolist()[:2] == [1, 2]


@pytest.mark.parametrize("name", data.ONLINE_DOMAINS)
def test_online_domain_missing_offline_names_alternatives(tmp_data_dir, name):
    with pytest.raises(DataUnavailableError) as err:
        data.load_domain(name)
    for offline in data.OFFLINE_DOMAINS:
        assert offline in str(err.value)


def test_online_download_failure_is_a_clear_error(tmp_data_dir, monkeypatch):
    import torchvision.datasets.utils as tvu

    def no_internet(*args, **kwargs):
        raise URLError("network unreachable")

    monkeypatch.setattr(tvu, "download_url", no_internet)
    monkeypatch.setattr(tvu, "download_and_extract_archive", no_internet)
    import torchvision.datasets.mnist as tvm

    monkeypatch.setattr(tvm, "download_and_extract_archive", no_internet)
    with pytest.raises(DataUnavailableError, match="could not be downloaded"):
        data.load_domain("mnist_full", download=True)


def test_syn_building_blocks_keep_shape_and_range():
    from datl_helpers import synth

    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(5, 32, 32)
    masks[:, 10:22, 14:18] = 1.0
    warped = synth.deform(masks, g)
    assert warped.shape == masks.shape and warped.min() >= 0 and warped.max() <= 1
    assert not torch.equal(warped, masks) and warped.sum() > 0
    photos = synth.grey_photos()
    assert len(photos) >= 5
    tex = synth.photo_textures(4, photos, np.random.default_rng(0), g)
    assert tex.shape == (4, 3, 32, 32) and tex.min() >= 0 and tex.max() <= 1
