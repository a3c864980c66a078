"""How fast is a DANN training step, and where does the time go? (``python -m datl_helpers bench``)

Small digit networks are cheap to compute, so the *pipeline* around the step decides the speed.
Two pipelines feed the same network, batch size and step (:func:`datl_helpers.adaptation.dann.dann_step`):

* **ours** — the images live on the training device as one uint8 tensor; a step indexes a batch,
  converts it to float there and runs the step (channels_last; on CUDA also a fused optimizer and
  bf16 autocast on GPUs with bf16 tensor cores); nothing waits for the device inside the loop.
* **ours, plain step** — the same pipeline with the plain step: ``ours`` over this is what the
  fast step alone gains, the rest of the gain over the DataLoader is the pipeline's.
* **DataLoader** — the conventional way: a ``torch.utils.data.DataLoader`` whose dataset turns each
  image into a PIL image and back into a float tensor with torchvision transforms, collates a batch
  on the CPU, copies it to the device; the step uses the plain path (NCHW, fp32, default optimizer).

Timing is honest: warm-up steps excluded, the device synchronised before reading the clock, the
pipelines timed in interleaved rounds (so a slow spell of a shared machine hits all of them), the
median over rounds reported. Images per second count source and target images. With workers, a
DataLoader prefetches while the other pipelines run, which can only flatter the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from datl_helpers.adaptation import dann
from datl_helpers.cli.common import format_table, load_named
from datl_helpers.core import provenance, train
from datl_helpers.core.domain import Domain, to_float
from datl_helpers.core.provenance import versions, write_json


class PILDigits(Dataset):
    """One image at a time, through PIL and torchvision transforms, as a conventional pipeline does."""

    def __init__(self, domain: Domain):
        from torchvision.transforms import v2

        self.x, self.y = domain.x_train, domain.y_train
        self.transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from torchvision.transforms.v2.functional import to_pil_image

        return self.transform(to_pil_image(self.x[i])), self.y[i]


def _endless(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def _fresh(source: Domain, device: torch.device, fast: bool, seed: int = 0):
    """The network, domain classifier and optimizer every pipeline starts from."""
    torch.manual_seed(seed)
    config = dann.DannConfig()
    model, disc, opt = dann.build_networks(source.num_classes, config, device, fast)
    disc.reverse.coeff = config.lambda_max
    return model, disc, opt


def ours_step_fn(
    source: Domain, target: Domain, batch_size: int, device: torch.device, fast: bool = True
) -> Callable[[], None]:
    """A function doing one DANN step through our device-resident pipeline (``fast``: the fast step)."""
    model, disc, opt = _fresh(source, device, fast=fast)
    xs, ys = source.x_train.to(device), source.y_train.to(device)
    xt = target.x_train.to(device)
    gen = torch.Generator().manual_seed(0)
    src = train.index_batches(len(ys), batch_size, gen, device=device)
    tgt = train.index_batches(len(xt), batch_size, gen, device=device)

    def step() -> None:
        i_s, i_t = next(src), next(tgt)
        dann.dann_step(model, disc, opt, to_float(torch.cat([xs[i_s], xt[i_t]])), ys[i_s], len(i_s), fast=fast)

    return step


def dataloader_step_fn(
    source: Domain, target: Domain, batch_size: int, workers: int, device: torch.device
) -> Callable[[], None]:
    """A function doing one DANN step fed by two PIL-transform DataLoaders with ``workers`` workers each."""
    model, disc, opt = _fresh(source, device, fast=False)
    options = {"batch_size": batch_size, "shuffle": True, "drop_last": True, "num_workers": workers,
                   "pin_memory": device.type == "cuda", "persistent_workers": workers > 0}
    src = _endless(DataLoader(PILDigits(source), generator=torch.Generator().manual_seed(0), **options))
    tgt = _endless(DataLoader(PILDigits(target), generator=torch.Generator().manual_seed(1), **options))

    def step() -> None:
        (xs, ys), (xt, _) = next(src), next(tgt)  # pinned on CUDA: copied without waiting
        xs, ys, xt = (t.to(device, non_blocking=True) for t in (xs, ys, xt))
        dann.dann_step(model, disc, opt, torch.cat([xs, xt]), ys, len(xs), fast=False)

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_rate(step: Callable[[], None], images_per_step: int, steps: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return images_per_step * steps / (time.perf_counter() - t0)


def interleaved_rates(
    pipelines: dict[str, Callable[[], None]], images_per_step: int, steps: int, repeats: int,
    device: torch.device, warmup: int = 3,
) -> dict[str, list[float]]:
    """Images per second of every pipeline, measured in rounds: each round times every pipeline once,
    so a slow spell of a shared machine hits all of them alike. Warm-up steps are not timed."""
    for step in pipelines.values():
        for _ in range(warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for _ in range(repeats):
        for name, step in pipelines.items():
            rates[name].append(_timed_rate(step, images_per_step, steps, device))
    return rates


def run_bench(
    source: Domain, target: Domain, device: str | torch.device = "auto", batch_size: int = 256,
    steps: int = 20, repeats: int = 3, workers: tuple[int, ...] = (0, 4), adapt: bool = True,
) -> dict:
    """Images per second of the DANN step through each pipeline (median over interleaved rounds),
    the median of the per-round ratios, and (``adapt``) the wall time and accuracy of one default
    ``adapt`` run (seed 0) from ``source`` to ``target``."""
    dev = train.resolve_device(device)
    per_step = 2 * batch_size
    pipelines = {"ours": ours_step_fn(source, target, batch_size, dev),
                 "ours_plain_step": ours_step_fn(source, target, batch_size, dev, fast=False)}
    for w in workers:
        pipelines[f"dataloader_{w}"] = dataloader_step_fn(source, target, batch_size, w, dev)
    rates = interleaved_rates(pipelines, per_step, steps, repeats, dev)

    def ratio(slower: str) -> float:
        return round(statistics.median(o / d for o, d in zip(rates["ours"], rates[slower])), 2)

    result = {
        "images_per_second": {k: round(statistics.median(v), 1) for k, v in rates.items()},
        "ratios": {**{f"vs_dataloader_{w}": ratio(f"dataloader_{w}") for w in workers},
                   "vs_ours_plain_step": ratio("ours_plain_step")},
        "rounds": {k: [round(r, 1) for r in v] for k, v in rates.items()},
        "batch_size": batch_size, "steps": steps, "repeats": repeats, "device": str(dev),
        "threads": torch.get_num_threads(),
    }
    if adapt:
        run = dann.run_adaptation(source, target, "dann", seed=0, device=dev)
        result["adapt"] = {"source": source.name, "target": target.name, "config": provenance.config_dict(dann.DannConfig()),
                           "target_accuracy": run["target_accuracy"], "seconds": run["seconds"]}
    return result


def _subset(domain: Domain, n: int) -> Domain:
    """``domain`` with only ``n`` training images (a seeded random, class-mixed subset)."""
    if n >= len(domain.y_train):
        return domain
    pick = torch.randperm(len(domain.y_train), generator=torch.Generator().manual_seed(0))[:n]
    return dataclasses.replace(domain, x_train=domain.x_train[pick], y_train=domain.y_train[pick])


def cost_growth(
    source: Domain, target: Domain, device: str | torch.device = "auto",
    steps: tuple[int, ...] = (100, 200, 400), batch_sizes: tuple[int, ...] = (32, 64, 128, 256),
    train_sizes: tuple[int, ...] = (1000, 2000, 4000), base_steps: int = 100,
) -> list[dict]:
    """Wall time of ``dann.fit`` (training only) as one factor grows and the others stay at the
    defaults: the number of steps, the batch size (per domain) and the training images per domain."""
    dev = train.resolve_device(device)
    base = dann.DannConfig()
    plan = ([("steps", s, {"steps": s}, None) for s in steps]
            + [("batch_size", b, {"steps": base_steps, "batch_size": b}, None) for b in batch_sizes]
            + [("train_images", n, {"steps": base_steps}, n) for n in train_sizes])
    dann.fit(source, target, "dann", dataclasses.replace(base, steps=5), device=dev)  # warm-up
    rows = []
    for factor, value, change, n in plan:
        src, tgt = (source, target) if n is None else (_subset(source, n), _subset(target, n))
        config = dataclasses.replace(base, log_every=10**9, **change)
        _sync(dev)
        t0 = time.perf_counter()
        dann.fit(src, tgt, "dann", config, seed=0, device=dev)
        _sync(dev)
        seconds = time.perf_counter() - t0
        images = 2 * config.steps * config.batch_size
        rows.append({"factor": factor, "value": value, "steps": config.steps, "batch_size": config.batch_size,
                     "train_images": len(src.y_train), "seconds": round(seconds, 2),
                     "images_per_second": round(images / seconds, 1)})
    return rows


# The command line: ``python -m datl_helpers bench``

def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` command's arguments."""
    p = sub.add_parser("bench", help="images/s of the DANN step: our pipeline vs DataLoader pipelines")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=256, help="images per domain per step")
    p.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 4], help="DataLoader worker counts to compare")
    p.add_argument("--source", default="mnist")
    p.add_argument("--target", default="mnistm")
    p.add_argument("--no-adapt", action="store_true", help="skip the timed default adapt run")
    p.add_argument("--growth", action="store_true",
                   help="also time DANN training against steps, batch size and training images")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source, target = load_named(args.source, args.data_dir), load_named(args.target, args.data_dir)
    result = run_bench(source, target, device=args.device, batch_size=args.batch_size, steps=args.steps,
                             repeats=args.repeats, workers=tuple(args.workers), adapt=not args.no_adapt)
    ratios = result["ratios"]
    rows = [{"pipeline": k, "images/s": f"{v:,.0f}", "ours is": f"{ratios[f'vs_{k}']:.2f}x" if k != "ours" else ""}
            for k, v in result["images_per_second"].items()]
    print(format_table(rows))
    print(f"DANN step, batch {args.batch_size} source + {args.batch_size} target images, on {result['device']} "
          f"({result['threads']} threads), median of {args.repeats} interleaved rounds of {args.steps} steps")
    if "adapt" in result:
        a = result["adapt"]
        print(f"adapt {a['source']} -> {a['target']} (default settings, seed 0): {a['seconds']:.0f} s, "
              f"target accuracy {100 * a['target_accuracy']:.1f} %")
    if args.growth:
        print("\nhow the DANN run's cost grows (training only; the other factors at their defaults):")
        result["growth"] = cost_growth(source, target, device=args.device)
        print(format_table(result["growth"]))
    if args.json:
        write_json(args.json, {"command": "bench", **result, "versions": versions()})
    return 0
