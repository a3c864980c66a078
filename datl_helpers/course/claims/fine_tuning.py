"""Notebook 02's claims: fine-tuning strategies, regularisation and model selection."""

from __future__ import annotations

from datl_helpers.core.results import mean, paired_gain, select
from datl_helpers.course.claims.claim import Claim

RECIPE_BASELINES = {"careful": "layer-wise LRs", "aggressive": "too-high LR"}


def _acc(payload: dict, strategy: str, labels=10, value: str = "accuracy") -> float:
    return mean(payload["runs"], value, strategy=strategy, labels_per_class=labels)


def reg_gain(payload: dict, regulariser: str, recipe: str, value: str = "accuracy") -> tuple[float, float]:
    """Paired gain (points) of a regulariser over its recipe without it, 10 labels/class."""
    return paired_gain(payload["runs"], {"strategy": f"{regulariser} ({recipe})"},
                       {"strategy": RECIPE_BASELINES[recipe]}, value, labels_per_class=10)


def _strategies_10(payload: dict) -> dict:
    return {"layerwise": _acc(payload, "layer-wise LRs"), "last": _acc(payload, "last stage"),
            "head": _acc(payload, "head only"), "gradual": _acc(payload, "gradual unfreezing")}


def _forgetting(payload: dict) -> dict:
    return {name: _acc(payload, strategy, value="source_accuracy")
            for name, strategy in (("head", "head only"), ("layerwise", "layer-wise LRs"), ("high", "too-high LR"))}


def _high_lr_all(payload: dict) -> dict:
    names = list(dict.fromkeys(r["strategy"] for r in select(payload["runs"], labels_per_class="all")))
    best = max(names, key=lambda n: _acc(payload, n, "all"))
    other = max((n for n in names if n != "too-high LR"), key=lambda n: _acc(payload, n, "all"))
    return {"high": _acc(payload, "too-high LR", "all"), "best": best, "best_acc": _acc(payload, best, "all"),
            "other": other, "other_acc": _acc(payload, other, "all"),
            "high_source": _acc(payload, "too-high LR", "all", "source_accuracy"),
            "layerwise": _acc(payload, "layer-wise LRs", "all"),
            "layerwise_source": _acc(payload, "layer-wise LRs", "all", "source_accuracy")}


def _batchnorm(payload: dict) -> dict:
    gain, spread = paired_gain(payload["runs"], {"strategy": "BatchNorm train mode"}, {"strategy": "BatchNorm eval mode"},
                               "accuracy", labels_per_class=10)
    return {"train": _acc(payload, "BatchNorm train mode"), "eval": _acc(payload, "BatchNorm eval mode"),
            "gain": gain, "spread": spread}


def _l2sp_aggressive(payload: dict) -> dict:
    out = {}
    for short, reg in (("l2sp", "L2-SP 0.1"), ("wd", "weight decay 0.5"), ("l1", "L1 1e-4"), ("dropout", "dropout 0.5")):
        out[short], out[f"{short}_spread"] = reg_gain(payload, reg, "aggressive")
    out["l2sp_source"] = reg_gain(payload, "L2-SP 0.1", "aggressive", "source_accuracy")[0]
    return out


def _careful_recipe(payload: dict) -> dict:
    out = {short: reg_gain(payload, reg, "careful")[0]
           for short, reg in (("dropout", "dropout 0.5"), ("wd", "weight decay 0.5"), ("l1", "L1 1e-4"), ("l2sp", "L2-SP 0.1"))}
    out["l2sp_source"] = reg_gain(payload, "L2-SP 0.1", "careful", "source_accuracy")[0]
    return out


def _early_stopping(payload: dict) -> dict:
    gain, spread = paired_gain(payload["runs"], {"strategy": "early stopping (val 20%)"},
                               {"strategy": "layer-wise LRs"}, "accuracy", labels_per_class=10)
    return {"gain": gain, "spread": spread}


def _cv_choice(payload: dict) -> dict:
    rows = payload["cv_choice"]
    names = list(dict.fromkeys(r["strategy"] for r in rows))
    cv = {n: mean(rows, "cv_accuracy", strategy=n) for n in names}
    test = {n: _acc(payload, n) for n in names}
    picked, best = max(cv, key=cv.get), max(test, key=test.get)
    return {"picked": picked, "best": best, "cv": cv[picked], "test": test[picked], "candidates": ", ".join(names)}


CLAIMS = [
    Claim("full_finetune_beats_frozen_with_few_labels", "02",
          "With 10 labels per class, training every stage at layer-wise rates ({layerwise:.1f} %) beats training the "
          "last stage ({last:.1f} %) and the head alone ({head:.1f} %).",
          _strategies_10, lambda n: n["layerwise"] > n["last"] > n["head"]),
    Claim("forgetting_follows_the_learning_rate", "02",
          "Fine-tuning forgets the source: after fine-tuning on 10 labels/class the `syn` accuracy is {head:.1f} % "
          "when only the head trains, {layerwise:.1f} % with layer-wise rates and {high:.1f} % with a rate that is too high.",
          _forgetting, lambda n: n["head"] > n["layerwise"] > n["high"] and n["high"] < 30),
    Claim("high_lr_wins_target_loses_source_with_all_labels", "02",
          "With all 4,000 labels the too-high rate is no longer a mistake for the target: it scores {high:.1f} %, "
          "within a point of the best strategy ({best_acc:.1f} %; the best of the others, {other}, scores "
          "{other_acc:.1f} %), but keeps only {high_source:.1f} % on "
          "`syn` against {layerwise_source:.1f} % for layer-wise rates.",
          _high_lr_all, lambda n: n["best_acc"] - n["high"] < 1 and n["high"] > n["layerwise"] - 1
          and n["high_source"] < n["layerwise_source"] - 20),
    Claim("batchnorm_train_mode_helps_under_shift", "02",
          "With the first three stages frozen, letting their BatchNorm statistics follow the target (train mode, "
          "{train:.1f} %) beats keeping the pretrained ones (eval mode, {eval:.1f} %): {gain:+.1f} ± {spread:.1f} "
          "points, paired by seed.",
          _batchnorm, lambda n: n["gain"] - n["spread"] > 0),
    Claim("l2sp_rescues_an_aggressive_recipe", "02",
          "On the aggressive recipe, L2-SP (toward the pretrained weights) recovers {l2sp:+.1f} ± {l2sp_spread:.1f} "
          "points on the target and {l2sp_source:+.1f} on `syn`; penalties toward zero cannot (weight decay "
          "{wd:+.1f} ± {wd_spread:.1f}, L1 {l1:+.1f} ± {l1_spread:.1f}; dropout {dropout:+.1f} ± {dropout_spread:.1f}).",
          _l2sp_aggressive, lambda n: n["l2sp"] - n["l2sp_spread"] > max(n["wd"] + n["wd_spread"], n["l1"] + n["l1_spread"])
          and n["l2sp"] > 5 and n["l2sp_source"] > 20),
    Claim("careful_recipe_needs_little_regularisation", "02",
          "On the careful recipe the explicit regularisers barely move the target (dropout {dropout:+.1f}, weight decay "
          "{wd:+.1f}, L1 {l1:+.1f} points); L2-SP trades {l2sp:+.1f} points on the target for {l2sp_source:+.1f} on `syn`.",
          _careful_recipe, lambda n: max(abs(n["dropout"]), abs(n["wd"]), abs(n["l1"])) < 1.5 and n["l2sp_source"] > 5),
    Claim("early_stopping_pays_with_labels", "02",
          "Early stopping on a 20 % validation split costs {gain:+.1f} ± {spread:.1f} points at 10 labels/class: "
          "the split takes a fifth of the 100 labels, and 80 steps do not overfit.",
          _early_stopping, lambda n: n["gain"] < 0),
    Claim("cv_picks_the_best_strategy", "02",
          "Stratified 5-fold cross-validation on the 100 labelled images alone picks {picked} ({cv:.1f} % CV, mean of "
          "3 seeds) among {candidates}; it is also the best of them on the test set ({test:.1f} %).",
          _cv_choice, lambda n: n["picked"] == n["best"]),
]
