"""Notebook 06's claims: adversarial robustness of transferred models."""

from __future__ import annotations

from datl_helpers.core.errors import ClaimError
from datl_helpers.core.results import mean, paired_gain, select
from datl_helpers.course.claims.claim import Claim

STRONG = "8/255"  # the radius the headline claims are made at (the one the robust models trained for)


def _robust_rows(payload: dict, attack: str = "pgd", eps: str = STRONG) -> list[dict]:
    """The reference's runs with their accuracy under ``attack`` at ``eps`` as ``robust``."""
    return [{**r, "robust": r["robust_accuracy"][attack][eps]} for r in payload["runs"]]


def _robust(payload: dict, name: str, eps: str = STRONG, attack: str = "pgd") -> float:
    return mean(_robust_rows(payload, attack, eps), "robust", name=name)


def _clean(payload: dict, name: str) -> float:
    return mean(payload["runs"], "clean_accuracy", name=name)


def _pretraining(payload: dict) -> dict:
    rows = _robust_rows(payload, eps="4/255")
    gain, spread = paired_gain(rows, {"name": "finetune"}, {"name": "scratch"}, "robust")
    return {"scratch4": _robust(payload, "scratch", "4/255"), "finetune4": _robust(payload, "finetune", "4/255"),
            "scratch8": _robust(payload, "scratch"), "finetune8": _robust(payload, "finetune"),
            "gain": gain, "spread": spread}


def _dann_defence(payload: dict) -> dict:
    rows = _robust_rows(payload)
    gain, spread = paired_gain(rows, {"name": "DANN (mnist -> mnistm)"}, {"name": "source-only (mnist -> mnistm)"},
                               "robust")
    return {"dann": _robust(payload, "DANN (mnist -> mnistm)"), "source_only": _robust(payload, "source-only (mnist -> mnistm)"),
            "gain": gain, "spread": spread, "finetune": _robust(payload, "finetune"),
            "pgd": _robust(payload, "finetune + PGD training")}


def _pgd_vs_fgsm(payload: dict) -> dict:
    gaps = [mean(_robust_rows(payload, "fgsm", e), "robust", name=n) - mean(_robust_rows(payload, "pgd", e), "robust", name=n)
            for n in dict.fromkeys(r["name"] for r in payload["runs"]) for e in ("2/255", "4/255", STRONG)]
    return {"smallest": min(gaps), "largest": max(gaps), "n": len(gaps)}


def _adversarial_training(payload: dict) -> dict:
    rows = _robust_rows(payload)
    fgsm, fgsm_s = paired_gain(rows, {"name": "finetune + FGSM training"}, {"name": "finetune"}, "robust")
    pgd, pgd_s = paired_gain(rows, {"name": "finetune + PGD training"}, {"name": "finetune"}, "robust")
    cost, _ = paired_gain(payload["runs"], {"name": "finetune + FGSM training"}, {"name": "finetune"}, "clean_accuracy")
    return {"plain": _robust(payload, "finetune"), "fgsm": _robust(payload, "finetune + FGSM training"),
            "pgd": _robust(payload, "finetune + PGD training"), "fgsm_gain": fgsm, "fgsm_spread": fgsm_s,
            "pgd_gain": pgd, "pgd_spread": pgd_s, "clean_cost": cost}


def _seconds(payload: dict, name: str) -> float:
    values = [r["train_seconds"] for r in select(payload["runs"], name=name)]
    if not values:
        raise ClaimError(f"no result rows for {name!r}")
    return sum(values) / len(values)


def _training_cost(payload: dict) -> dict:
    plain, fgsm, pgd = (_seconds(payload, n) for n in ("finetune", "finetune + FGSM training", "finetune + PGD training"))
    steps = payload["steps"]
    per_step = {n: _seconds(payload, n) / max(1, steps[n]) for n in ("finetune", "finetune + FGSM training",
                                                                        "finetune + PGD training")}
    return {"plain": plain, "fgsm": fgsm, "pgd": pgd,
            "fgsm_ratio": per_step["finetune + FGSM training"] / per_step["finetune"],
            "pgd_ratio": per_step["finetune + PGD training"] / per_step["finetune"],
            "fgsm_steps": steps["finetune + FGSM training"], "pgd_steps": steps["finetune + PGD training"],
            "plain_steps": steps["finetune"]}


def _probe_transfer(payload: dict) -> dict:
    return {"robust_probe": _robust(payload, "robust backbone + linear probe"),
            "standard_probe": _robust(payload, "linear probe"), "finetune": _robust(payload, "finetune"),
            "robust_probe_clean": _clean(payload, "robust backbone + linear probe"),
            "standard_probe_clean": _clean(payload, "linear probe")}


def _probe_goal(payload: dict) -> dict:
    probe, finetune = _robust(payload, "robust backbone + linear probe"), _robust(payload, "finetune")
    cost = _clean(payload, "finetune") - _clean(payload, "robust backbone + linear probe")
    return {"probe": probe, "finetune": finetune, "ratio": probe / max(finetune, 1e-9), "cost": cost}


def _probe_or_finetune(payload: dict) -> dict:
    return {"probe": _robust(payload, "robust backbone + linear probe"),
            "finetune": _robust(payload, "robust backbone + finetune"),
            "probe_clean": _clean(payload, "robust backbone + linear probe"),
            "finetune_clean": _clean(payload, "robust backbone + finetune")}


def _robust_backbone_beats_adversarial_finetuning(payload: dict) -> dict:
    return {"robust": _robust(payload, "robust backbone + finetune"), "pgd": _robust(payload, "finetune + PGD training"),
            "robust_clean": _clean(payload, "robust backbone + finetune"),
            "pgd_clean": _clean(payload, "finetune + PGD training"),
            "both": _robust(payload, "robust backbone + finetune + FGSM training")}


def _sanity(payload: dict) -> dict:
    checks = [c for r in payload["runs"] if "sanity" in r for c in r["sanity"]]
    return {"passed": sum(c["passed"] for c in checks), "n": len(checks),
            "models": len({r["name"] for r in payload["runs"] if "sanity" in r}),
            "failed": "; ".join(f"{r['name']}: {c['check']}" for r in payload["runs"] if "sanity" in r
                                for c in r["sanity"] if not c["passed"]) or "none"}


CLAIMS = [
    Claim("pretraining_buys_robustness", "06",
          "Pretraining buys robustness: under PGD-10 at 4/255, fine-tuning the standard backbone keeps {finetune4:.1f} % "
          "against {scratch4:.1f} % from scratch ({gain:+.1f} ± {spread:.1f} points, paired by seed); at 8/255 "
          "{finetune8:.1f} % against {scratch8:.1f} %.",
          _pretraining, lambda n: n["gain"] - n["spread"] > 0 and n["finetune8"] >= n["scratch8"]),
    Claim("dann_is_no_defence", "06",
          "Domain-adversarial training is not adversarial training: DANN keeps {dann:.1f} % under PGD-10 at 8/255, "
          "source-only under the same protocol {source_only:.1f} % (DANN minus source-only {gain:+.1f} ± {spread:.1f} "
          "points, paired by seed). Both beat few-label fine-tuning ({finetune:.1f} %) because both learnt from 4,000 "
          "labelled `mnist` images; adversarial fine-tuning with PGD on 100 labels reaches {pgd:.1f} %.",
          _dann_defence, lambda n: n["gain"] < 1 and n["dann"] < n["pgd"]),
    Claim("pgd_beats_fgsm", "06",
          "PGD-10 is the stronger attack on every model and radius: FGSM leaves {smallest:+.1f} to {largest:+.1f} points "
          "more accuracy ({n} model × radius pairs).",
          _pgd_vs_fgsm, lambda n: n["smallest"] >= -1),
    Claim("adversarial_training_helps", "06",
          "Exposing the model to adversarial examples during fine-tuning does make it more robust at the radius it "
          "trained for: PGD-10 accuracy at 8/255 rises from {plain:.1f} % to {fgsm:.1f} % with FGSM training "
          "({fgsm_gain:+.1f} ± {fgsm_spread:.1f}) and to {pgd:.1f} % with PGD-3 training ({pgd_gain:+.1f} ± "
          "{pgd_spread:.1f}); FGSM training changes clean accuracy by {clean_cost:+.1f} points.",
          _adversarial_training, lambda n: n["fgsm_gain"] - n["fgsm_spread"] > 0 and n["pgd_gain"] - n["pgd_spread"] > 0),
    Claim("adversarial_training_cost", "06",
          "It costs time: a step of FGSM training takes {fgsm_ratio:.1f}× and of PGD-3 training {pgd_ratio:.1f}× an "
          "ordinary step ({plain:.0f} s for {plain_steps} ordinary steps, {fgsm:.0f} s for {fgsm_steps} FGSM steps, "
          "{pgd:.0f} s for {pgd_steps} PGD steps, one CPU thread).",
          _training_cost, lambda n: 1.3 < n["fgsm_ratio"] < n["pgd_ratio"]),
    Claim("robustness_transfers_through_a_probe", "06",
          "Robustness transfers through a frozen probe: on the robust backbone a linear probe keeps {robust_probe:.1f} % "
          "under PGD-10 at 8/255, against {standard_probe:.1f} % on the standard backbone and {finetune:.1f} % for "
          "fine-tuning it (clean: {robust_probe_clean:.1f} % against {standard_probe_clean:.1f} %).",
          _probe_transfer, lambda n: n["robust_probe"] > n["standard_probe"] and n["robust_probe"] > n["finetune"]),
    Claim("robust_probe_goal", "06",
          "The robust backbone's probe keeps {ratio:.1f}× the PGD-10 (8/255) accuracy of fine-tuning the standard "
          "backbone ({probe:.1f} % against {finetune:.1f} %) at a cost of {cost:.1f} clean points.",
          _probe_goal, lambda n: n["ratio"] > 1),
    Claim("finetuning_keeps_robustness", "06",
          "Fine-tuning the robust backbone on 100 clean labels keeps more of its robustness than freezing it: "
          "{finetune:.1f} % under PGD-10 at 8/255 against {probe:.1f} % for the frozen probe (clean {finetune_clean:.1f} "
          "% against {probe_clean:.1f} %).",
          _probe_or_finetune, lambda n: n["finetune"] > n["probe"]),
    Claim("robust_backbone_beats_adversarial_finetuning", "06",
          "Robust pretraining beats adversarial fine-tuning with few labels: the robust backbone fine-tuned on clean "
          "labels keeps {robust:.1f} % under PGD-10 at 8/255, the standard backbone fine-tuned with PGD training "
          "{pgd:.1f} %, at a clean cost ({robust_clean:.1f} % against {pgd_clean:.1f} %); both together: {both:.1f} %.",
          _robust_backbone_beats_adversarial_finetuning, lambda n: n["robust"] > n["pgd"]),
    Claim("sanity_checks_pass", "06",
          "The attacks pass the gradient-masking sanity checks: {passed} of {n} checks on {models} models (failed: "
          "{failed}).",
          _sanity, lambda n: n["passed"] == n["n"], "seed 0"),

]
