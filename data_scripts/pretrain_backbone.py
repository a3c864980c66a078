"""Pretrain the course's DigitNet on the `syn` domain and write the checkpoint that ships with datl.

    python data_scripts/pretrain_backbone.py            # the shipped configuration: about 3 min on 2 CPU cores
    python data_scripts/pretrain_backbone.py --epochs 1 --out /tmp/w   # a quick try
    python data_scripts/pretrain_backbone.py --adversarial fgsm   # the robust backbone of notebook 06
    python data_scripts/pretrain_backbone.py --robustness-only    # re-measure a checkpoint's PGD accuracy

With ``--adversarial fgsm`` (or ``pgd``) every training batch is replaced by its adversarial version
(FGSM from a random start, alpha = 1.25 eps, Wong et al. 2020; or PGD-3), at radius ``--eps`` in
[0, 1] pixel units, and the checkpoint is written as ``digitnet_syn_robust``; its metadata adds
the attack, eps and the clean and PGD-10 accuracies.

Deterministic for a given seed on a given machine. Writes ``digitnet_syn.pt`` (a state dict, read
back with ``torch.load(weights_only=True)``) and ``digitnet_syn.json`` (its sha256, the model and
training configuration, the input preprocessing, the `syn` test accuracy and the zero-shot accuracy
on every offline target), both atomically, into ``datl_helpers/weights`` by default.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import torch

from datl_helpers import __version__, data, models, robust, train
from datl_helpers.core.cache import sha256_bytes
from datl_helpers.transfer.recolour import pretraining_augment


def measure_robustness(model: torch.nn.Module, domains: dict) -> dict:
    """PGD-10 accuracy of ``model`` at every eps of ``robust.EPS_GRID`` on 1,000 random test images of
    each domain (seed 0), with a note of what was measured: the metadata's ``robust_accuracy``."""
    accuracy = {}
    for name, domain in domains.items():
        x, y = data.sample_test_set(domain, 1000, seed=0)
        acc = robust.robust_accuracy(model, x, y, robust.EPS_GRID, "pgd", seed=0, device="cpu")
        accuracy[name] = {robust.eps_name(e): a for e, a in acc.items()}
    print("PGD-10 accuracy (1,000 test images):", json.dumps(accuracy))
    return {"attack": "PGD-10, random start, alpha = 2.5 eps / 10, L-infinity, on [0, 1] pixels",
            "images": "1,000 random test images per domain (seed 0)", "accuracy": accuracy}


def remeasure(kind: str, weights_dir: Path) -> int:
    """Measure the robustness of a shipped checkpoint again and rewrite its metadata (atomically);
    the checkpoint itself, and so its sha256, stay as they are."""
    name = robust.BACKBONES[kind]
    model = models.load_pretrained(name, weights_dir).eval()
    domains = {n: data.load_domain(n) for n in ("syn", "mnist", "mnistm", "digits")}
    meta = models.pretrained_info(name, weights_dir)
    meta["robust_accuracy"] = measure_robustness(model, domains)
    _, meta_path = models.pretrained_paths(name, weights_dir)
    data.atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))
    print(f"updated {meta_path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--texture-p", type=float, default=0.5, help="share of images blended with a colour field")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--adversarial", choices=("none", "fgsm", "pgd"), default="none",
                        help="adversarial pretraining (writes digitnet_syn_robust)")
    parser.add_argument("--eps", type=robust.parse_eps, default=8 / 255, help="radius of adversarial pretraining")
    parser.add_argument("--out", type=Path, default=models.WEIGHTS_DIR)
    parser.add_argument("--robustness-only", action="store_true",
                        help="only measure the PGD accuracy of the shipped checkpoint again (its metadata is rewritten)")
    args = parser.parse_args(argv)
    if args.robustness_only:
        return remeasure("robust" if args.adversarial != "none" else "standard", args.out)

    start = time.perf_counter()
    syn = data.load_domain("syn")
    targets = {name: data.load_domain(name) for name in ("mnist", "mnistm", "digits")}
    x = data.to_float(syn.x_train)
    mean = x.mean(dim=(0, 2, 3)).tolist()
    std = x.std(dim=(0, 2, 3)).tolist()
    del x
    config = {"num_classes": 10, "widths": [32, 48, 96], "feature_dim": 128, "mean": mean, "std": std}

    train.seed_everything(args.seed)
    model = models.DigitNet(**config)
    g = torch.Generator().manual_seed(args.seed + 1)
    adversarial = args.adversarial != "none"
    step = robust.adversarial_step(args.adversarial, args.eps, seed=args.seed + 2) if adversarial else None
    history = train.fit(
        model,
        syn.x_train,
        syn.y_train,
        train.FitConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                        warmup_steps=200, label_smoothing=0.1),
        transform=lambda xb: pretraining_augment(xb, g, args.texture_p),
        step=step,
        x_val=syn.x_test,
        y_val=syn.y_test,
        on_epoch_end=lambda e, m, r: print(
            f"epoch {r['epoch']:2d}  loss {r['train_loss']:.3f}  syn val {r['val_accuracy']:.4f}", flush=True
        ),
        seed=args.seed,
        device=args.device,
    )
    model.cpu().to(memory_format=torch.contiguous_format)
    accuracy = {"syn": train.evaluate(model, syn.x_test, syn.y_test, device="cpu")["accuracy"]}
    for name, domain in targets.items():
        accuracy[name] = train.evaluate(model, domain.x_test, domain.y_test, device="cpu")["accuracy"]
    print("test accuracy:", json.dumps({k: round(v, 4) for k, v in accuracy.items()}))
    robustness = measure_robustness(model, {"syn": syn, **targets})

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    blob = buffer.getvalue()
    name = robust.BACKBONES["robust" if adversarial else "standard"]
    meta = {
        "name": name,
        "sha256": sha256_bytes(blob),
        "config": config,
        "preprocess": {
            "input": "uint8 RGB images N x 3 x 32 x 32, divided by 255",
            "channel_order": "RGB",
            "normalize_mean": mean,
            "normalize_std": std,
            "note": "the model's first layer (Normalize) applies mean/std itself",
        },
        "training": {
            "data": "syn train split",
            "syn_builder_version": data.BUILDER_VERSION["syn"],
            "syn_seed": data.SYN_SEED,
            "syn_size": data.SYN_SIZE,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "optimizer": "adamw",
            "lr": args.lr,
            "weight_decay": args.weight_decay,
            "schedule": "cosine, 200 warm-up steps",
            "label_smoothing": 0.1,
            "augmentation": (
                "random colour inversion (p=0.3) and channel permutation; "
                f"|image - procedural colour field| with p={args.texture_p}"
            ),
            "adversarial": {"attack": args.adversarial, "eps": robust.eps_name(args.eps),
                            "detail": "FGSM from a random start, alpha = 1.25 eps (Wong et al. 2020)"
                            if args.adversarial == "fgsm" else "PGD-3 from a random start, alpha = 2.5 eps / 3"}
            if adversarial else None,
            "seed": args.seed,
            "seconds": round(time.perf_counter() - start, 1),
            "history": history.records,
        },
        "test_accuracy": accuracy,
        "robust_accuracy": robustness,
        "zero_shot_note": "syn is the source; the others are zero-shot (no training on them)",
        "versions": {
            "datl_helpers": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }
    ckpt, meta_path = models.pretrained_paths(name, weights_dir=args.out)
    data.atomic_write(ckpt, lambda tmp: tmp.write_bytes(blob))
    data.atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=1) + "\n"))
    print(f"wrote {ckpt} ({len(blob) / 1e6:.2f} MB) and {meta_path} in {meta['training']['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
