"""Notebook 01's claims: feature extraction and label efficiency."""

from __future__ import annotations

from datl_helpers.core.results import best_of, mean, paired_differences, select
from datl_helpers.course.claims.claim import Claim

LABEL_COUNTS_01 = (1, 5, 10, 50, "all")


def _curve(payload: dict, target: str, method: str) -> dict:
    """Mean accuracy (%) per label count of one method on one target."""
    rows = payload["label_efficiency"]
    return {k: mean(rows, target=target, method=method, labels_per_class=k) for k in LABEL_COUNTS_01
            if select(rows, target=target, method=method, labels_per_class=k)}


def _finetune_beats_probe(payload: dict) -> dict:
    probe, tuned = _curve(payload, "mnistm", "linear-probe"), _curve(payload, "mnistm", "finetune")
    wins = [k for k in probe if tuned[k] > probe[k]]
    return {"margins": ", ".join(f"{tuned[k] - probe[k]:+.1f} at {k}" for k in probe),
            "from_5_on": all(k in wins for k in LABEL_COUNTS_01[1:] if k in probe)}


def _gap_shrinks(payload: dict) -> dict:
    out = {}
    for target in ("mnistm", "mnist"):
        scratch = _curve(payload, target, "scratch")
        best = {k: max(_curve(payload, target, m)[k] for m in ("linear-probe", "finetune")) for k in scratch}
        out[target] = {k: best[k] - scratch[k] for k in scratch}
    return {"mnistm_1": out["mnistm"][1], "mnistm_all": out["mnistm"]["all"], "mnist_1": out["mnist"][1],
            "mnist_all": out["mnist"]["all"]}


def _scratch_passes_probe(payload: dict) -> dict:
    """The probe's lead over scratch at 10 labels/class on each target, and the first label count
    from which scratch is ahead on every seed."""
    out = {}
    rows = payload["label_efficiency"]
    for target in ("mnistm", "mnist"):
        scratch, probe = _curve(payload, target, "scratch"), _curve(payload, target, "linear-probe")
        out[f"{target}_lead"] = probe[10] - scratch[10]

        def every_seed(k, target=target) -> bool:
            gains = paired_differences(rows, {"method": "scratch"}, {"method": "linear-probe"}, target=target,
                                       labels_per_class=k)
            return min(gains.values()) > 0

        out[target] = next((k for k in LABEL_COUNTS_01 if k in scratch and every_seed(k)), "never")
    return out


def _all_labels(payload: dict) -> dict:
    scratch, tuned = _curve(payload, "mnistm", "scratch")["all"], _curve(payload, "mnistm", "finetune")["all"]
    return {"scratch": scratch, "finetune": tuned, "gap": tuned - scratch}


def preprocessing(payload: dict) -> dict:
    rows = [dict(r, target_accuracy=r["accuracy"]) for r in payload["preprocessing"] if r["target"] == "mnistm"]
    base = mean(rows, preprocessing="as pretrained (RGB, /255)")
    loss = {name: base - mean(rows, preprocessing=name)
            for name in ("BGR channel order", "0-255, not divided", "normalised twice")}
    return {"base": base, "bgr": loss["BGR channel order"], "unscaled": loss["0-255, not divided"],
            "twice": loss["normalised twice"]}


def _later_stages(payload: dict) -> dict:
    rows = [dict(r, target_accuracy=r["accuracy"]) for r in payload["stage_probe"] if r["target"] == "mnistm"]
    best, acc = best_of(rows, "stage")
    first = rows[0]["stage"]
    return {"best": best, "acc": acc, "first": first, "first_acc": mean(rows, stage=first)}


CLAIMS = [
    Claim("finetune_beats_probe_from_5", "01",
          "On `mnistm`, fine-tuning beats the frozen linear probe from 5 labels per class on (fine-tune minus "
          "probe, points per labels/class: {margins}).",
          _finetune_beats_probe, lambda n: n["from_5_on"]),
    Claim("transfer_matters_most_with_few_labels", "01",
          "Transfer is worth most where labels are scarce: the best pretrained method minus scratch is "
          "{mnistm_1:+.1f} points at 1 label/class on `mnistm` and {mnistm_all:+.1f} with all labels "
          "(`mnist`: {mnist_1:+.1f} and {mnist_all:+.1f}).",
          _gap_shrinks, lambda n: n["mnistm_1"] > n["mnistm_all"] and n["mnist_1"] > n["mnist_all"]),
    Claim("scratch_passes_probe_sooner_on_mnist", "01",
          "Scratch catches up with the frozen probe sooner on clean `mnist` digits than on photo-textured `mnistm`: "
          "at 10 labels/class the probe leads by {mnist_lead:+.1f} points on `mnist` and by {mnistm_lead:+.1f} on "
          "`mnistm`; scratch is ahead on every seed from {mnist} labels/class on `mnist` and from {mnistm} on `mnistm`.",
          _scratch_passes_probe, lambda n: n["mnistm_lead"] - n["mnist_lead"] > 5),
    Claim("all_labels_level", "01",
          "With all 4,000 labels and training to convergence, pretraining no longer helps on `mnistm`: scratch "
          "({scratch:.1f} %) reaches fine-tuning ({finetune:.1f} %; fine-tuning minus scratch: {gap:+.1f} points).",
          _all_labels, lambda n: n["gap"] < 1.0),
    Claim("preprocessing_must_match", "01",
          "Preprocessing must match pretraining: unscaled 0-255 inputs cost the frozen probe {unscaled:.1f} points "
          "and normalising twice {twice:.1f}, against {base:.1f} % matched; a swapped channel order costs only "
          "{bgr:.1f}, because this backbone was pretrained with random channel permutations.",
          preprocessing, lambda n: n["unscaled"] > 20 and n["twice"] > 3 and abs(n["bgr"]) < 2),
    Claim("later_stages_transfer_better", "01",
          "On `mnistm` the probe on the last stage's features ({best}, {acc:.1f} %) beats the first stage's "
          "({first}, {first_acc:.1f} %): later stages hold the digit shapes learned on `syn`.",
          _later_stages, lambda n: n["best"] == "fc" and n["acc"] > n["first_acc"]),
]
