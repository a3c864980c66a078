"""Notebook 04's claims: DANN beside the simpler methods, and its two side studies (a few target
labels; the paper's protocol from random weights)."""

from __future__ import annotations

import itertools

from datl_helpers.core.errors import ClaimError
from datl_helpers.core.results import best_of, mean, paired_gain, select
from datl_helpers.course.claims.claim import Claim

UNSUPERVISED = ("source-only", "dann", "adabn", "coral", "entropy")  # no target labels


def _pairs(payload: dict) -> list[str]:
    return list(dict.fromkeys(r["pair"] for r in payload["runs"]))


def _arrow(pair: str) -> str:
    """A pair as the claims write it: `syn → mnist`."""
    return f"`{pair.replace('->', '→')}`"


def _per_pair(payload: dict, fn) -> str:
    return "; ".join(f"{_arrow(p)} {fn(p)}" for p in _pairs(payload))


def _protocol(payload: dict) -> dict:
    rows = payload["protocol_steps"]
    steps = list(dict.fromkeys(r["protocol_step"] for r in rows))
    gain, spread = paired_gain(rows, {"protocol_step": steps[-1]}, {"protocol_step": steps[0]})
    pair = rows[0]["pair"]
    return {"pair": pair.replace("->", "→"), "naive": mean(rows, protocol_step=steps[0]),
            "protocol": mean(rows, protocol_step=steps[-1]), "gain": gain, "spread": spread,
            "zero": 100 * payload["zero_shot"][pair]}


def _source_only_vs_zero_shot(payload: dict) -> dict:
    diff = {p: mean(payload["runs"], pair=p, method="source-only") - 100 * payload["zero_shot"][p] for p in _pairs(payload)}
    return {"worst": min(diff.values()),
            "details": _per_pair(payload, lambda p: f"{mean(payload['runs'], pair=p, method='source-only'):.1f} % "
                                                    f"vs {100 * payload['zero_shot'][p]:.1f} %")}


def _dann_gains(payload: dict) -> dict:
    gains = {p: paired_gain(payload["runs"], {"method": "dann"}, {"method": "source-only"}, pair=p)
             for p in _pairs(payload)}
    return {"wins": sum(g > 0 for g, _ in gains.values()), "n": len(gains),
            "significant": sum(g - s > 0 for g, s in gains.values()),
            "details": _per_pair(payload, lambda p: f"{gains[p][0]:+.1f} ± {gains[p][1]:.1f}")}


def _budget_note(payload: dict, method: str) -> str:
    return ("still rising at the largest budget measured, so a lower bound" if method in payload.get("not_converged", [])
            else "converged")


def _dann_goal(payload: dict) -> dict:
    margin = {p: mean(payload["runs"], pair=p, method="dann")
              - max(100 * payload["zero_shot"][p], mean(payload["runs"], pair=p, method="source-only"))
              for p in _pairs(payload)}
    return {"met": sum(m >= 3 for m in margin.values()), "n": len(margin), "budget": _budget_note(payload, "dann"),
            "details": _per_pair(payload, lambda p: f"{margin[p]:+.1f}")}


def _versus_source_only(payload: dict, method: str) -> dict:
    diff = {p: mean(payload["runs"], pair=p, method=method) - mean(payload["runs"], pair=p, method="source-only")
            for p in _pairs(payload)}
    return {"largest": max(abs(d) for d in diff.values()), "best": max(diff.values()),
            "details": _per_pair(payload, lambda p: f"{diff[p]:+.1f}")}


def _entropy_vs_dann(payload: dict) -> dict:
    diff = {p: mean(payload["runs"], pair=p, method="entropy") - mean(payload["runs"], pair=p, method="dann")
            for p in _pairs(payload)}
    return {"rivals": sum(d > -1 for d in diff.values()), "n": len(diff),
            "details": _per_pair(payload, lambda p: f"{diff[p]:+.1f}")}


def _oracle(payload: dict) -> dict:
    runs = payload["runs"]
    gaps = {p: mean(runs, pair=p, method="target-oracle") - best_of(
        [r for r in runs if r["method"] in UNSUPERVISED], "method", pair=p)[1] for p in _pairs(payload)}
    return {"smallest": min(gaps.values()), "details": _per_pair(payload, lambda p: f"{gaps[p]:+.1f}")}


def _best_unsupervised(payload: dict) -> dict:
    runs = [r for r in payload["runs"] if r["method"] in UNSUPERVISED]
    best = {p: best_of(runs, "method", pair=p) for p in _pairs(payload)}
    return {"winners": len({m for m, _ in best.values()}),
            "details": _per_pair(payload, lambda p: f"{best[p][0]} ({best[p][1]:.1f} %)")}


SEPARABLE, NEAR_CHANCE = 70.0, 60.0  # % domain accuracy: clearly separable features; nearly indistinguishable


def _domain_accuracy(payload: dict) -> dict:
    acc = {p: {m: mean(payload["runs"], "domain_accuracy", pair=p, method=m) for m in ("source-only", "dann")}
           for p in _pairs(payload)}
    separable = [p for p in acc if acc[p]["source-only"] >= SEPARABLE]
    return {"pushed_down": sum(acc[p]["dann"] <= acc[p]["source-only"] - 10 for p in separable),
            "separable": len(separable), "near_chance": sum(acc[p]["source-only"] < NEAR_CHANCE for p in acc),
            "details": _per_pair(payload, lambda p: f"{acc[p]['source-only']:.0f} % → {acc[p]['dann']:.0f} %")}


def _fresh_classifier(payload: dict) -> dict:
    pad = {r["features of"]: r["proxy A-distance"] for r in payload["proxy_a_distance"]}
    return {"pair": _arrow(payload["diagnostics"]["pair"]), "backbone": pad["pretrained backbone"],
            "source_only": pad["source-only"], "dann": pad["dann"]}


CLAIMS = [
    Claim("protocol_keeps_the_backbone", "04",
          "On {pair}, source-only under the protocol reaches {protocol:.1f} % against {naive:.1f} % under the naive "
          "one ({gain:+.1f} ± {spread:.1f} points, paired by seed); the backbone zero-shot is {zero:.1f} %.",
          _protocol, lambda n: n["gain"] - n["spread"] > 10 and n["protocol"] >= n["zero"] - 2),
    Claim("source_only_keeps_zero_shot", "04",
          "Under the protocol, source-only training never ends more than 2 points below the zero-shot backbone "
          "(source-only vs zero-shot: {details}).",
          _source_only_vs_zero_shot, lambda n: n["worst"] >= -2),
    Claim("dann_beats_source_only", "04",
          "DANN beats source-only on {wins} of {n} pairs, by more than the seeds' spread on {significant} "
          "(points, paired by seed: {details}).",
          _dann_gains, lambda n: n["wins"] == n["n"], mixed=lambda n: n["significant"] < n["n"]),
    Claim("dann_goal", "04",
          "DANN clears the better of zero-shot and source-only by 3 points on {met} of {n} pairs (margin in points: "
          "{details}; DANN's budget curve: {budget}).",
          _dann_goal, lambda n: n["met"] >= 2, mixed=lambda n: n["met"] < n["n"]),
    Claim("per_domain_batchnorm_subsumes_adabn", "04",
          "AdaBN — ordinary source-only training, then target statistics — ends below the protocol's source-only, "
          "which normalises each domain on its own from the first step (AdaBN minus source-only, points: {details}).",
          lambda p: _versus_source_only(p, "adabn"), lambda n: n["best"] < 0),
    Claim("coral_adds_little", "04",
          "Deep CORAL moves the protocol's source-only by less than a point on every pair (points: {details}): "
          "BatchNorm per domain already matches each channel's mean and variance, which leaves covariances little to add.",
          lambda p: _versus_source_only(p, "coral"), lambda n: n["largest"] < 1),
    Claim("entropy_rivals_dann", "04",
          "The simplest method is a serious rival: entropy minimisation — one extra loss term, no adversary — is "
          "within a point of DANN or better on {rivals} of {n} pairs (entropy minimisation minus DANN, points: {details}).",
          _entropy_vs_dann, lambda n: n["rivals"] >= 2),
    Claim("oracle_is_the_ceiling", "04",
          "Target labels still win: the target-oracle beats the best method without them on every pair, by "
          "{details} points.",
          _oracle, lambda n: n["smallest"] > 0),
    Claim("dann_pushes_domain_accuracy_down", "04",
          "DANN's own domain classifier ends at least 10 points closer to chance than source-only's on each of the "
          "{separable} pairs where source-only's features still tell the domains apart (domain accuracy, source-only → "
          "DANN: {details}); where source-only's classifier is already near chance there is little left to align.",
          _domain_accuracy, lambda n: n["separable"] >= 1 and n["pushed_down"] == n["separable"] and n["near_chance"] >= 1),
    Claim("fresh_classifier_still_separates", "04",
          "Fooling its own domain classifier is not the same as hiding the domain: on {pair} a fresh linear classifier "
          "separates DANN's features at least as well as source-only's (proxy A-distance {dann:.2f} against {source_only:.2f}; "
          "the backbone before training {backbone:.2f}; 0 means indistinguishable, 2 separable).",
          _fresh_classifier, lambda n: n["dann"] >= n["source_only"], rests_on="seed 0"),
    Claim("no_single_winner", "04",
          "The best method without target labels depends on the pair: {details}.",
          _best_unsupervised, lambda n: n["winners"] > 1),
]


# Notebook 04's two side studies, each with a reference of its own: a few target labels
# (04_semi_supervised.json) and the paper's protocol from random weights (04_paper_protocol.json)

FINETUNE_FEW = "finetune on the labels alone"


NEAR_THE_ORACLE = 2.0  # points: DANN alone this close to the target-oracle has little left to learn


def _dann_vs_finetune(payload: dict, pair: str, k: int) -> tuple[float, float]:
    """DANN with ``k`` labelled target images per class minus fine-tuning on them alone (points, paired)."""
    return paired_gain(payload["runs"] + payload["finetune"], {"method": "dann"}, {"method": FINETUNE_FEW},
                       pair=pair, target_labels=k)


def _semi_with_one_label(payload: dict) -> dict:
    k = min(payload["labels_per_class"])
    gains = {p: _dann_vs_finetune(payload, p, k) for p in _pairs(payload)}
    return {"k": k, "smallest": min(g - s for g, s in gains.values()),
            "details": "; ".join(f"{_arrow(p)} {g:+.1f} ± {s:.1f}" for p, (g, s) in gains.items())}


def _semi_gain_over_labels(payload: dict) -> dict:
    ks = sorted(payload["labels_per_class"])
    gains = {p: [_dann_vs_finetune(payload, p, k)[0] for k in ks] for p in _pairs(payload)}
    return {"shrinks": all(a > b for g in gains.values() for a, b in itertools.pairwise(g)),
            "details": "; ".join(f"{_arrow(p)} " + " / ".join(f"{x:+.1f}" for x in g) for p, g in gains.items()),
            "ks": " / ".join(str(k) for k in ks)}


def _finetune_wins(payload: dict) -> dict:
    k = max(payload["labels_per_class"])
    gains = {p: _dann_vs_finetune(payload, p, k) for p in _pairs(payload)}
    winners = [p for p, (g, s) in gains.items() if g + s < 0]  # fine-tuning ahead by more than the spread
    return {"k": k, "winners": len(winners), "pairs": ", ".join(_arrow(p) for p in winners) or "no pair",
            "details": "; ".join(f"{_arrow(p)} {-g:+.1f} ± {s:.1f}" for p, (g, s) in gains.items())}


def _labels_added_to_dann(payload: dict, near: bool) -> dict:
    """What the most labels add to DANN (points, paired by seed), on the pairs where DANN alone is
    within NEAR_THE_ORACLE points of the target-oracle (``near``) or further from it."""
    unsupervised = payload["unsupervised"]
    rows = payload["runs"] + select(unsupervised, method="dann")
    k = max(payload["labels_per_class"])
    gaps = {p: mean(unsupervised, method="target-oracle", pair=p) - mean(unsupervised, method="dann", pair=p)
            for p in _pairs(payload)}
    chosen = [p for p, gap in gaps.items() if (gap <= NEAR_THE_ORACLE) == near]
    if not chosen:
        raise ClaimError(f"no pair where DANN alone is {'within' if near else 'more than'} {NEAR_THE_ORACLE} points "
                         "of the target-oracle")
    gains = {p: paired_gain(rows, {"target_labels": k}, {"target_labels": 0}, pair=p) for p in chosen}
    fewer = sorted(set(payload["labels_per_class"]) - {k})
    return {"k": k, "largest": max(abs(g) for g, _ in gains.values()), "smallest": min(g - s for g, s in gains.values()),
            "details": "; ".join(f"{_arrow(p)} {g:+.1f} ± {s:.1f} (DANN alone {gaps[p]:.1f} points below the oracle)"
                                 for p, (g, s) in gains.items()),
            "fewer": "; ".join(f"{_arrow(p)} " + ", ".join(
                f"{paired_gain(rows, {'target_labels': j}, {'target_labels': 0}, pair=p)[0]:+.1f} with {j}"
                for j in fewer) for p in chosen)}


def _paper_source_only(payload: dict) -> dict:
    return {"ours": mean(payload["runs"], method="source-only"), "theirs": payload["paper"]["source-only"]}


def _paper_dann_gain(payload: dict) -> dict:
    gain, spread = paired_gain(payload["runs"], {"method": "dann"}, {"method": "source-only"})
    return {"gain": gain, "spread": spread}


def _paper_dann_reached(payload: dict) -> dict:
    rising = "dann" in payload.get("not_converged", [])
    return {"dann": mean(payload["runs"], method="dann"), "theirs": payload["paper"]["dann"],
            "steps": payload["budget"]["steps"]["dann"], "batch": payload["budget"]["batch_size"],
            "reading": "its curve was still rising there, so this is a lower bound" if rising else "converged"}


def _backbone_beats_scratch(payload: dict) -> dict:
    return {"backbone_so": mean(payload["from_backbone"], method="source-only"),
            "scratch_dann": mean(payload["runs"], method="dann")}


CLAIMS_04_SEMI = [
    Claim("semi_dann_beats_fine_tuning_with_one_label", "04-semi",
          "With {k} labelled target image per class, DANN that also keeps the labelled source and the unlabelled "
          "target beats fine-tuning on that image alone on every pair (points, paired by seed: {details}).",
          _semi_with_one_label, lambda n: n["smallest"] > 0),
    Claim("dann_advantage_shrinks_with_labels", "04-semi",
          "DANN's lead over fine-tuning on the same images shrinks as labels are added, on every pair (points at "
          "{ks} labels per class: {details}).",
          _semi_gain_over_labels, lambda n: n["shrinks"]),
    Claim("fine_tuning_wins_with_the_most_labels", "04-semi",
          "With {k} labelled target images per class, fine-tuning the backbone on them alone beats DANN with the "
          "same images on {pairs} (fine-tuning minus DANN, points, paired by seed: {details}).",
          _finetune_wins, lambda n: n["winners"] >= 1),
    Claim("few_labels_add_little_to_dann", "04-semi",
          "Where DANN alone is already within a point or two of the target-oracle, {k} labelled target images per "
          "class move it by less than a point (DANN + labels minus DANN, points, paired by seed: {details}): the "
          "labelled source and the unlabelled target had taught it what those images would.",
          lambda p: _labels_added_to_dann(p, near=True), lambda n: n["largest"] < 1),
    Claim("few_labels_lift_dann_far_from_the_oracle", "04-semi",
          "Where DANN alone stays far below the target-oracle, {k} labelled target images per class lift it "
          "(DANN + labels minus DANN, points, paired by seed: {details}); fewer do not ({fewer}).",
          lambda p: _labels_added_to_dann(p, near=False), lambda n: n["smallest"] > 0),
]


CLAIMS_04_PAPER = [
    Claim("paper_source_only_in_range", "04-paper",
          "From random weights under the paper's protocol, source-only reaches {ours:.1f} % on our mnistm, in the "
          "range of the paper's {theirs:.2f} % on its MNIST-M (within 10 points).",
          _paper_source_only, lambda n: abs(n["ours"] - n["theirs"]) <= 10),
    Claim("paper_dann_beats_source_only", "04-paper",
          "From random weights DANN adds {gain:+.1f} ± {spread:.1f} points to source-only (paired by seed).",
          _paper_dann_gain, lambda n: n["gain"] - n["spread"] > 5),
    Claim("paper_dann_reaches_the_paper", "04-paper",
          "Trained long enough ({steps:,} steps of {batch} source + {batch} target images), DANN from random "
          "weights reaches {dann:.1f} %, at or above the paper's {theirs:.2f} % ({reading}).",
          _paper_dann_reached, lambda n: n["dann"] >= n["theirs"]),
    Claim("a_backbone_beats_the_adversary", "04-paper",
          "Starting from the shipped backbone, plain source-only training ({backbone_so:.1f} %) beats DANN from "
          "random weights ({scratch_dann:.1f} %): on this pair, pretraining is worth more than the adversary.",
          _backbone_beats_scratch, lambda n: n["backbone_so"] > n["scratch_dann"]),
]
