"""Notebook 03's claims: augmentation from scratch and from pretrained weights."""

from __future__ import annotations

from datl_helpers.core.results import best_of, mean, paired_gain, select
from datl_helpers.course.claims.claim import Claim


def _best_gains(payload: dict, labels) -> dict[str, tuple[str, float, float]]:
    """Per method: the best preset at ``labels`` per class and its paired gain (mean, std) over none."""
    grid, out = payload["grid"], {}
    for method in ("scratch", "linear-probe", "finetune"):
        presets = [a for a in dict.fromkeys(r["augment"] for r in select(grid, method=method)) if a != "none"]
        scored = {a: paired_gain(grid, {"augment": a}, {"augment": "none"}, method=method, labels_per_class=labels)
                  for a in presets}
        best = max(scored, key=lambda a: scored[a][0])
        out[method] = (best, *scored[best])
    return out


def _scratch_gains_most(payload: dict) -> dict:
    g = _best_gains(payload, 10)
    return {"scratch": g["scratch"][1], "scratch_best": g["scratch"][0], "finetune": g["finetune"][1],
            "finetune_best": g["finetune"][0], "probe": g["linear-probe"][1], "probe_best": g["linear-probe"][0]}


def _pretraining_beats_augmentation(payload: dict) -> dict:
    grid = payload["grid"]
    out = {}
    for k in (10, 50):
        for method in ("scratch", "finetune"):
            best, acc = best_of(grid, "augment", method=method, labels_per_class=k)
            out.update({f"{method}_{k}": acc, f"{method}_best_{k}": best})
        out[f"finetune_none_{k}"] = mean(grid, method="finetune", augment="none", labels_per_class=k)
    return out


def _gain_shrinks(payload: dict) -> dict:
    g10, g50 = _best_gains(payload, 10)["scratch"], _best_gains(payload, 50)["scratch"]
    return {"gain_10": g10[1], "best_10": g10[0], "gain_50": g50[1], "best_50": g50[0]}


def _strongest_preset(payload: dict) -> dict:
    grid = payload["grid"]
    best, _ = best_of(grid, "augment", method="scratch", labels_per_class=10)
    strongest = max(payload["presets"], key=payload["presets"].get)
    gain, spread = paired_gain(grid, {"augment": strongest}, {"augment": "none"}, method="scratch", labels_per_class=10)
    return {"best": best, "strongest": strongest, "acc": mean(grid, method="scratch", augment=strongest, labels_per_class=10),
            "best_acc": mean(grid, method="scratch", augment=best, labels_per_class=10),
            "gain": gain, "spread": spread,
            "none": mean(grid, method="scratch", augment="none", labels_per_class=10)}


def _full_strength(payload: dict) -> dict:
    rows = payload["grid"] + payload["sweep_extra"]
    out = {}
    for k in (10, 50):
        gain, spread = paired_gain(rows, {"strength": 1.0}, {"augment": "none"}, method="scratch", labels_per_class=k)
        out.update({f"gain_{k}": gain, f"spread_{k}": spread})
    out["gain_all"], out["spread_all"] = paired_gain(payload["over_augmentation"], {"strength": 1.0, "augment": "1"},
                                                     {"augment": "none"}, method="scratch", labels_per_class="all")
    return out


def _probe_gains_least(payload: dict) -> dict:
    out = {}
    for k in (10, 50):
        gains = {a: paired_gain(payload["grid"], {"augment": a}, {"augment": "none"}, method="linear-probe",
                                labels_per_class=k) for a in ("light", "medium", "heavy")}
        out[f"heavy_{k}"], out[f"heavy_{k}_spread"] = gains["heavy"]
        out[f"all_lose_{k}"] = all(g < 0 for g, _ in gains.values())
        out[f"finetune_heavy_{k}"] = paired_gain(payload["grid"], {"augment": "heavy"}, {"augment": "none"},
                                                 method="finetune", labels_per_class=k)[0]
    return out


def label_changing(payload: dict) -> dict:
    over, out = payload["over_augmentation"], {}
    for method in ("scratch", "finetune"):
        for k in (10, 50, "all"):
            gain, spread = paired_gain(over, {"augment": "rotation 180°"}, {"augment": "none"}, method=method,
                                       labels_per_class=k)
            out[f"{method}_{k}"], out[f"{method}_{k}_spread"] = gain, spread
    return out


def _domain_kinds(payload: dict) -> dict:
    gap = payload["domain_gap"]
    out = {}
    for kind in ("generic", "domain", "all"):
        out[kind], out[f"{kind}_spread"] = paired_gain(gap, {"augment": kind}, {"augment": "none"}, method="scratch")
    return out


def _short_budget(payload: dict) -> dict:
    short = paired_gain(payload["short_budget"], {"augment": "heavy"}, {"augment": "none"}, method="scratch")
    converged = paired_gain(payload["grid"], {"augment": "heavy"}, {"augment": "none"}, method="scratch",
                            labels_per_class=10)
    steps = {r["steps"] for r in payload["short_budget"]}.pop()
    return {"steps": steps, "short": short[0], "short_spread": short[1], "converged": converged[0],
            "converged_spread": converged[1]}


CLAIMS = [
    Claim("short_budget_misleads", "03",
          "A short budget reverses the verdict: after {steps} steps heavy augmentation moves scratch by "
          "{short:+.1f} ± {short_spread:.1f} points at 10 labels/class, trained to convergence by "
          "{converged:+.1f} ± {converged_spread:.1f}.",
          _short_budget, lambda n: n["short"] + n["short_spread"] < 0 < n["converged"] - n["converged_spread"]),
    Claim("scratch_gains_most", "03",
          "With 10 labels per class, augmentation helps a network trained from scratch far more than a pretrained "
          "one: {scratch:+.1f} points for scratch (best preset: {scratch_best}), {finetune:+.1f} for fine-tuning "
          "({finetune_best}) and {probe:+.1f} for the linear probe ({probe_best}), paired by seed.",
          _scratch_gains_most, lambda n: n["scratch"] > 2 * max(n["finetune"], n["probe"], 0.5)),
    Claim("probe_gains_least", "03",
          "A frozen backbone cannot learn new invariances, so augmented copies only give its linear probe harder "
          "examples: the heavy preset moves the probe by {heavy_10:+.1f} ± {heavy_10_spread:.1f} points at 10 "
          "labels/class and {heavy_50:+.1f} ± {heavy_50_spread:.1f} at 50, where every preset costs it accuracy "
          "(fine-tuning: {finetune_heavy_10:+.1f} and {finetune_heavy_50:+.1f}).",
          _probe_gains_least, lambda n: n["all_lose_50"] and n["heavy_50"] + n["heavy_50_spread"] < 0
          and all(n[f"heavy_{k}"] < n[f"finetune_heavy_{k}"] for k in (10, 50))),
    Claim("pretraining_beats_augmentation_with_few_labels", "03",
          "With 10 labels per class pretraining is worth more than augmentation: fine-tuning without augmentation "
          "({finetune_none_10:.1f} %) beats the best-augmented scratch model ({scratch_10:.1f} % with {scratch_best_10}).",
          _pretraining_beats_augmentation, lambda n: n["finetune_none_10"] > n["scratch_10"]),
    Claim("augmentation_catches_up_with_more_labels", "03",
          "With 50 labels per class augmentation catches up with pretraining: the best-augmented scratch model "
          "({scratch_50:.1f} % with {scratch_best_50}) passes un-augmented fine-tuning ({finetune_none_50:.1f} %) and "
          "comes level with augmented fine-tuning ({finetune_50:.1f} % with {finetune_best_50}).",
          _pretraining_beats_augmentation,
          lambda n: n["scratch_50"] > n["finetune_none_50"] and abs(n["scratch_50"] - n["finetune_50"]) < 1.5),
    Claim("gain_shrinks_with_labels", "03",
          "The more labels, the less augmentation adds: scratch gains {gain_10:+.1f} points at 10 labels/class "
          "({best_10}) and {gain_50:+.1f} at 50 ({best_50}).",
          _gain_shrinks, lambda n: n["gain_50"] < n["gain_10"]),
    Claim("strongest_preset_best_for_scratch", "03",
          "Trained to convergence, the strongest preset is among the best for scratch at 10 labels/class: {strongest} "
          "reaches {acc:.1f} % (the best preset, {best}: {best_acc:.1f} %) against {none:.1f} % without augmentation "
          "({gain:+.1f} ± {spread:.1f} points).",
          _strongest_preset, lambda n: n["best_acc"] - n["acc"] <= 1 and n["gain"] - n["spread"] > 0),
    Claim("full_strength_still_helps_scratch", "03",
          "With few labels, strength alone never became too much: even strength 1.0 beats no augmentation for scratch "
          "({gain_10:+.1f} ± {spread_10:.1f} points at 10 labels/class, {gain_50:+.1f} ± {spread_50:.1f} at 50); with all "
          "4,000 labels it is too much ({gain_all:+.1f} ± {spread_all:.1f}).",
          _full_strength, lambda n: n["gain_10"] - n["spread_10"] > 0 and n["gain_50"] - n["spread_50"] > 0
          and n["gain_all"] + n["spread_all"] < 0),
    Claim("label_changing_hurts", "03",
          "Augmentation that changes the label hurts the pretrained model: rotations up to 180° (a 6 becomes a 9) "
          "move fine-tuning by {finetune_10:+.1f} ± {finetune_10_spread:.1f} points at 10 labels/class, "
          "{finetune_50:+.1f} ± {finetune_50_spread:.1f} at 50 and {finetune_all:+.1f} ± {finetune_all_spread:.1f} "
          "with all labels (scratch: {scratch_10:+.1f}, {scratch_50:+.1f} and {scratch_all:+.1f}).",
          label_changing, lambda n: all(n[f"finetune_{k}"] + n[f"finetune_{k}_spread"] < 0 for k in (10, 50, "all"))),
    Claim("domain_kinds_for_scratch", "03",
          "For scratch, colour and texture augmentation aimed at the domain gap gains {domain:+.1f} ± {domain_spread:.1f} "
          "points over none, generic geometry and occlusion {generic:+.1f} ± {generic_spread:.1f}, every kind "
          "together {all:+.1f} ± {all_spread:.1f} (10 labels/class, medium strength).",
          _domain_kinds, lambda n: n["domain"] > n["generic"]),
]
