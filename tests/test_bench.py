from __future__ import annotations

import json

import pytest
import torch

from datl_helpers import bench, dann, provenance
from datl_helpers.cli.main import main


def test_pil_dataset_gives_the_same_floats_as_our_pipeline(domains):
    ds = bench.PILDigits(domains["mnistm"])
    x, y = ds[7]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert torch.allclose(x, domains["mnistm"].x_train[7].float() / 255)
    assert y == domains["mnistm"].y_train[7]


def test_run_bench_shape(domains):
    out = bench.run_bench(domains["mnist"], domains["mnistm"], device="cpu", batch_size=16, steps=1, repeats=1,
                          workers=(0,), adapt=False)
    assert set(out["images_per_second"]) == {"ours", "ours_plain_step", "dataloader_0"}
    assert all(v > 0 for v in out["images_per_second"].values())
    for slower in ("dataloader_0", "ours_plain_step"):  # one round: the median ratio is the ratio of rates
        assert out["ratios"][f"vs_{slower}"] == pytest.approx(
            out["images_per_second"]["ours"] / out["images_per_second"][slower], rel=0.01)
    assert out["device"] == "cpu" and "adapt" not in out


def test_bench_command_json(tmp_path, domains, capsys):
    path = tmp_path / "bench.json"
    code = main(["bench", "--device", "cpu", "--batch-size", "8", "--steps", "1", "--repeats", "1", "--workers", "0",
                 "--no-adapt", "--json", str(path)])
    assert code == 0
    payload = json.loads(path.read_text())
    assert payload["command"] == "bench" and payload["batch_size"] == 8
    assert set(payload["ratios"]) == {"vs_dataloader_0", "vs_ours_plain_step"}
    assert "dataloader_0" in capsys.readouterr().out


def test_fast_and_plain_paths_agree_on_cpu(domains):
    quick = dann.DannConfig(steps=30, batch_size=32, log_every=10)
    fast = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1, config=quick, device="cpu")
    plain = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1,
                                config=dann.DannConfig(**{**provenance.config_dict(quick), "fast": False}), device="cpu")
    # the same arithmetic in another memory layout: equal up to float rounding
    assert fast["target_accuracy"] == pytest.approx(plain["target_accuracy"], abs=0.02)
    assert fast["source_accuracy"] == pytest.approx(plain["source_accuracy"], abs=0.02)


def test_cost_growth_varies_one_factor_at_a_time(domains):
    rows = bench.cost_growth(domains["mnist"], domains["mnistm"], device="cpu", steps=(2, 4), batch_sizes=(8,),
                             train_sizes=(100,), base_steps=2)
    assert [(r["factor"], r["value"]) for r in rows] == [
        ("steps", 2), ("steps", 4), ("batch_size", 8), ("train_images", 100),
    ]
    assert rows[0]["batch_size"] == dann.DannConfig.batch_size and rows[2]["steps"] == 2
    assert rows[3]["train_images"] == 100 and rows[0]["train_images"] == len(domains["mnist"].y_train)
    assert all(r["seconds"] > 0 and r["images_per_second"] > 0 for r in rows)


# On a GPU (skipped elsewhere; `bash .ci/gpu-checks OUT tests` runs them): the fast path's CUDA-only parts.
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_fast_dann_step_on_cuda(domains):
    dev = torch.device("cuda")
    config = dann.DannConfig()
    model, disc, opt = dann.build_networks(10, config, dev, fast=True)
    assert all(g["fused"] for g in opt.param_groups)
    before = [p.detach().clone() for p in model.parameters()]
    batch = domains["mnist"].x_train[:16].float().div(255).to(dev)
    labels = domains["mnist"].y_train[:8].to(dev)
    label_loss, domain_loss, logits, _dom_logits, _ = dann.dann_step(model, disc, opt, batch, labels, 8, fast=True)
    assert torch.isfinite(label_loss) and torch.isfinite(domain_loss)
    assert label_loss.dtype == domain_loss.dtype == torch.float32
    assert logits.dtype == (torch.bfloat16 if dann.bf16_pays(dev) else torch.float32)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@needs_cuda
def test_fast_and_plain_paths_agree_on_cuda(domains):
    quick = dann.DannConfig(steps=60, batch_size=64, log_every=10)
    plain_config = dann.DannConfig(**{**provenance.config_dict(quick), "fast": False})
    fast = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1, config=quick, device="cuda")
    plain = dann.run_adaptation(domains["mnist"], domains["mnistm"], "dann", seed=1, config=plain_config, device="cuda")
    # bf16 and a fused optimizer change the rounding, so the runs drift apart: a looser tolerance than on CPU
    assert fast["target_accuracy"] == pytest.approx(plain["target_accuracy"], abs=0.05)
    assert fast["source_accuracy"] == pytest.approx(plain["source_accuracy"], abs=0.03)


@needs_cuda
def test_run_bench_on_cuda(domains):
    out = bench.run_bench(domains["mnist"], domains["mnistm"], device="cuda", batch_size=32, steps=2, repeats=1,
                          workers=(0,), adapt=False)
    assert out["device"].startswith("cuda") and all(v > 0 for v in out["images_per_second"].values())
