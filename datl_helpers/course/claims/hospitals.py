"""Notebook 08's claims: shift between hospitals, label shift, and when DANN is the wrong tool."""

from __future__ import annotations

from datl_helpers.core.results import mean, paired_differences, paired_interval, select
from datl_helpers.course.claims.claim import Claim

LABEL_FREE = ("dann", "importance-weighting", "label-shift")


def _pairs(payload: dict) -> list[str]:
    return list(payload.get("pairs") or dict.fromkeys(r["pair"] for r in payload["runs"]))


SHORT = {"heart_cleveland": "Cleveland", "heart_hungary": "Hungary", "heart_switzerland": "Switzerland",
         "heart_va": "VA", "rotterdam": "Rotterdam", "gbsg": "GBSG"}


def _short(domain: str) -> str:
    return SHORT.get(domain, domain)


def _name(pair: str) -> str:
    return " → ".join(_short(d) for d in pair.split("->"))


def _shares(payload: dict) -> dict:
    """Each side's share with the label, over every pair's hospitals."""
    shares = {}
    for pair in _pairs(payload):
        source, target = pair.split("->")
        shares[source] = 100 * payload["shift"][pair]["positive_share"]["source"]
        shares[target] = 100 * payload["shift"][pair]["positive_share"]["target"]
    return shares


def _label_shares(payload: dict) -> dict:
    heart = {k: v for k, v in _shares(payload).items() if k.startswith("heart_")}
    low, high = min(heart, key=heart.get), max(heart, key=heart.get)
    return {"low": _short(low), "low_share": heart[low], "high": _short(high),
            "high_share": heart[high], "spread": heart[high] - heart[low]}


def _missingness(payload: dict) -> dict:
    """The measurement whose missingness differs most between two sides of a pair."""
    best = (0.0, "", "", "", 0.0, 0.0)
    for pair in _pairs(payload):
        miss = payload["shift"][pair]["missing"]
        for feature, s in miss["source"].items():
            t = miss["target"][feature]
            if abs(t - s) > best[0]:
                best = (abs(t - s), feature, *pair.split("->"), s, t)
    _, feature, source, target, s, t = best
    return {"feature": feature, "source": _short(source), "target": _short(target),
            "s": 100 * s, "t": 100 * t, "difference": 100 * abs(t - s)}


def _separable(payload: dict) -> dict:
    acc = {p: 100 * payload["shift"][p]["domain_accuracy_raw"] for p in _pairs(payload)}
    return {"lowest": min(acc.values()), "details": "; ".join(f"{_name(p)} {a:.0f} %" for p, a in acc.items())}


def _majority(payload: dict) -> dict:
    """The rule 'everyone has the label' on the hospital where the label is most common: its accuracy is that
    share, its balanced accuracy 50 % (by definition: it finds every positive and no negative)."""
    shares = _shares(payload)
    top = max(shares, key=shares.get)
    return {"hospital": _short(top), "accuracy": shares[top], "balanced": 50.0}


def _gain(payload: dict, pair: str, method: str, value: str = "target_balanced_accuracy") -> dict:
    diffs = list(paired_differences(payload["runs"], {"method": method}, {"method": "source-only"}, value,
                                    pair=pair).values())
    lo, hi = paired_interval(diffs)
    return {"mean": sum(diffs) / len(diffs), "lo": lo, "hi": hi}


def _shifted(payload: dict, points: float = 20.0) -> list[str]:
    """The pairs whose share with the label moves by ``points`` or more."""
    return [p for p in _pairs(payload) if abs(payload["shift"][p]["positive_share"]["target"]
                                             - payload["shift"][p]["positive_share"]["source"]) * 100 >= points]


def _fmt(g: dict) -> str:
    return f"{g['mean']:+.1f} ({g['lo']:+.1f} to {g['hi']:+.1f})"


def _label_shift_fixes(payload: dict) -> dict:
    pairs = _shifted(payload)
    acc = {p: _gain(payload, p, "label-shift", "target_accuracy") for p in pairs}
    brier = {p: mean(payload["runs"], "target_brier", pair=p, method="label-shift")
             - mean(payload["runs"], "target_brier", pair=p, method="source-only") for p in pairs}
    return {"n": len(pairs), "ahead": sum(g["lo"] > 0 for g in acc.values()),
            "higher": sum(g["mean"] > 0 for g in acc.values()), "brier_better": sum(b < 0 for b in brier.values()),
            "details": "; ".join(f"{_name(p)} {_fmt(g)}" for p, g in acc.items())}


def _balanced_falls(payload: dict) -> dict:
    pairs = _shifted(payload)
    bal = {p: _gain(payload, p, "label-shift") for p in pairs}
    return {"n": len(pairs), "lower": sum(g["mean"] < 0 for g in bal.values()),
            "details": "; ".join(f"{_name(p)} {g['mean']:+.1f}" for p, g in bal.items())}


def _dann_on_label_shift(payload: dict) -> dict:
    pairs = _shifted(payload)
    dann = {p: _gain(payload, p, "dann", "target_accuracy") for p in pairs}
    versus = {p: mean(payload["runs"], pair=p, method="label-shift") - mean(payload["runs"], pair=p, method="dann")
              for p in pairs}
    return {"n": len(pairs), "surely_ahead": sum(g["lo"] > 0 for g in dann.values()),
            "behind_label_shift": sum(v > 0 for v in versus.values()),
            "details": "; ".join(f"{_name(p)} {_fmt(g)}" for p, g in dann.items())}


def _best_share(payload: dict, value: str) -> dict:
    """Per pair where the oracle is ahead by 2 points or more, the label-free method closing the largest
    share of the source-only -> oracle gap in ``value``."""
    from datl_helpers.beyond.tabular import gap_closed

    best = {}
    for pair in _pairs(payload):
        shares = {m: gap_closed(payload["runs"], pair, m, value) for m in LABEL_FREE}
        shares = {m: s for m, s in shares.items() if s == s}  # NaN: no gap worth closing
        if shares:
            m = max(shares, key=shares.get)
            best[pair] = (m if len(set(shares.values())) > 1 else "every method alike", shares[m])
    top = max(best, key=lambda p: best[p][1])
    return {"best": best[top][1], "best_pct": 100 * best[top][1], "pair": _name(top), "method": best[top][0],
            "count": sum(s >= 0.5 for _, s in best.values()), "n": len(best),
            "details": "; ".join(f"{_name(p)} {m} {100 * s:.0f} %" for p, (m, s) in best.items())}


def _dann_aligns(payload: dict) -> dict:
    """Where the label share moves: the domain classifier's accuracy on the features (source-only -> DANN) and
    DANN's accuracy change (points)."""
    runs, pairs = payload["runs"], _shifted(payload)
    dom = {p: (mean(runs, "domain_accuracy", pair=p, method="source-only"),
               mean(runs, "domain_accuracy", pair=p, method="dann")) for p in pairs}
    acc = {p: mean(runs, pair=p, method="dann") - mean(runs, pair=p, method="source-only") for p in pairs}
    return {"n": len(pairs), "aligned": sum(d < s for s, d in dom.values()), "lost": sum(a < 0 for a in acc.values()),
            "details": "; ".join(f"{_name(p)} {dom[p][0]:.0f} → {dom[p][1]:.0f} % ({acc[p]:+.1f})" for p in pairs)}


def _auc_unmoved(payload: dict) -> dict:
    moves = {p: abs(_gain(payload, p, "label-shift", "target_auc")["mean"]) for p in _pairs(payload)}
    return {"largest": max(moves.values())}


def _em_share(payload: dict) -> dict:
    """EM's estimate of the target's share against the source's share, per pair with a label shift."""
    rows = []
    for p in _shifted(payload):
        s = payload["shift"][p]["positive_share"]
        est = mean(payload["runs"], "estimated_positive_share", pair=p, method="label-shift")
        each = [100 * r["estimated_positive_share"] for r in select(payload["runs"], pair=p, method="label-shift")]
        rows.append((p, 100 * s["source"], est, 100 * s["target"], min(each), max(each)))
    closer = sum(abs(e - t) < abs(s - t) for _, s, e, t, _, _ in rows)
    return {"closer": closer, "n": len(rows), "widest": max(hi - lo for *_, lo, hi in rows),
            "details": "; ".join(f"{_name(p)} {s:.0f} % → {e:.0f} % ({lo:.0f}–{hi:.0f} %; true {t:.0f} %)"
                                 for p, s, e, t, lo, hi in rows)}


def _spam(payload: dict) -> dict:
    runs = payload["spam_label_shift"]

    def gain(key: str) -> dict:
        diffs = [100 * (r[key] - r["source_only_accuracy"]) for r in runs]
        lo, hi = paired_interval(diffs)
        return {"mean": sum(diffs) / len(diffs), "lo": lo, "hi": hi}

    em, exact = gain("label_shift_accuracy"), gain("true_prior_accuracy")
    share = runs[0]["positive_share"]
    return {"em": _fmt(em), "exact": _fmt(exact), "em_mean": em["mean"], "exact_mean": exact["mean"],
            "source": 100 * share["source"], "target": 100 * share["target"],
            "estimate": 100 * sum(r["estimated_positive_share"] for r in runs) / len(runs)}


def _oracle(payload: dict) -> dict:
    """The oracle against the best method without target labels: margin in accuracy and in balanced accuracy."""
    runs = payload["runs"]

    def margin(value: str, pair: str) -> float:
        return mean(runs, value, pair=pair, method="target-oracle") - max(
            mean(runs, value, pair=pair, method=m) for m in ("source-only", *LABEL_FREE))

    acc = {p: margin("target_accuracy", p) for p in _pairs(payload)}
    bal = {p: margin("target_balanced_accuracy", p) for p in _pairs(payload)}
    return {"acc_ahead": sum(m > 0 for m in acc.values()), "bal_behind": sum(m <= 0 for m in bal.values()),
            "n": len(acc), "details": "; ".join(f"{_name(p)} {acc[p]:+.1f} / {bal[p]:+.1f}" for p in acc)}


CLAIMS = [
    Claim("label_shares_differ", "08",
          "The share of patients with heart disease runs from {low_share:.0f} % ({low}) to {high_share:.0f} % "
          "({high}): a label shift of {spread:.0f} points between hospitals of one study.",
          _label_shares, lambda n: n["spread"] >= 50, "the data alone"),
    Claim("missingness_differs", "08",
          "What is measured shifts too: {feature} is missing for {s:.0f} % of {source}'s patients and {t:.0f} % of "
          "{target}'s.",
          _missingness, lambda n: n["difference"] >= 75, "the data alone"),
    Claim("hospitals_are_separable", "08",
          "A logistic regression tells the two sides of every pair apart from their measurements (balanced accuracy, "
          "5-fold cross-validated: {details}; 50 % is guessing).",
          _separable, lambda n: n["lowest"] >= 60, "the data alone"),
    Claim("accuracy_rewards_the_majority", "08",
          "Calling everyone sick scores {accuracy:.0f} % accuracy in {hospital} and {balanced:.0f} % balanced "
          "accuracy: under label shift, accuracy measures the share of the majority class as much as the model.",
          _majority, lambda n: n["accuracy"] >= 85, "the data alone"),
    Claim("label_shift_fixes_label_shift", "08",
          "Where the share with the label moves by 20 points or more, the label-shift correction changes accuracy by "
          "{details} points (paired by seed, 95 % interval): higher on {higher} of {n} pairs, surely on {ahead}; "
          "a better Brier score on only {brier_better} of {n}, since EM's estimates overshoot (section 6).",
          _label_shift_fixes, lambda n: n["higher"] * 2 > n["n"] and n["ahead"] >= 1,
          mixed=lambda n: n["higher"] < n["n"]),
    Claim("label_shift_lowers_balanced_accuracy", "08",
          "The same correction lowers balanced accuracy on {lower} of {n} of those pairs ({details} points): it "
          "moves decisions toward the target's majority class, which balanced accuracy, blind to the share of each "
          "class, does not reward.",
          _balanced_falls, lambda n: n["lower"] * 2 > n["n"]),
    Claim("dann_does_not_fix_label_shift", "08",
          "DANN does not fix a label shift: on the same pairs its accuracy change over source-only is {details} "
          "points; surely ahead on {surely_ahead} of {n}, and behind the label-shift correction on "
          "{behind_label_shift} of {n}.",
          _dann_on_label_shift, lambda n: n["surely_ahead"] == 0 and n["behind_label_shift"] * 2 > n["n"]),
    Claim("dann_aligns_yet_loses", "08",
          "DANN wins the game it plays and still loses the patients: the domain classifier's accuracy on its features "
          "falls, and its target accuracy changes (source-only → DANN, points): {details}; aligned on {aligned} of "
          "{n} pairs, less accurate on {lost}.",
          _dann_aligns, lambda n: n["aligned"] == n["n"] and n["lost"] * 2 > n["n"]),
    Claim("accuracy_gap_closed", "08",
          "In accuracy, the best method without target labels closes {best_pct:.0f} % of the source-only → oracle gap on "
          "{pair} ({method}); per pair with a gap of 2 points or more: {details}. Half of it or more on {count} of "
          "{n} pairs.",
          lambda payload: _best_share(payload, "target_accuracy"), lambda n: n["best"] >= 0.5,
          mixed=lambda n: n["count"] < n["n"]),
    Claim("balanced_gap_stays_open", "08",
          "In balanced accuracy no method without target labels closes half of the gap: the best is {best_pct:.0f} % on "
          "{pair} ({method}); per pair where the oracle is 2 points or more ahead: {details}.",
          lambda payload: _best_share(payload, "target_balanced_accuracy"), lambda n: n["best"] < 0.5),
    Claim("auc_does_not_move", "08",
          "The label-shift correction leaves the AUC where it was (the largest mean change on any pair is "
          "{largest:.2f} points): it moves the threshold, not the ranking.",
          _auc_unmoved, lambda n: n["largest"] < 0.01),
    Claim("em_finds_the_share", "08",
          "EM reads the target's share with the label off its unlabelled patients, but not reliably (source → "
          "estimate, mean and range over seeds): {details}. Closer to the truth than the source's share on {closer} "
          "of {n} pairs; from one seed to the next the estimate moves by up to {widest:.0f} points, and an estimate "
          "near 100 % makes the corrected model call nearly everyone sick.",
          _em_share, lambda n: n["closer"] * 2 > n["n"] and n["widest"] >= 30, mixed=lambda n: n["closer"] < n["n"]),
    Claim("spam_is_not_label_shift", "08",
          "On notebook 07's spam pair ({source:.0f} % → {target:.0f} % spam; EM estimates {estimate:.0f} %) the "
          "correction changes accuracy by {em} points, and even the exact share by only {exact}: its errors come "
          "from what changed in the emails, not from the share of spam.",
          _spam, lambda n: abs(n["exact_mean"]) < 2),
    Claim("oracle_leans_to_the_majority", "08",
          "Target labels win on accuracy, not on balanced accuracy: the oracle's margin over the best method without "
          "them is (accuracy / balanced accuracy, points) {details}. Trained with plain cross-entropy on a few dozen "
          "to a few hundred patients of a skewed hospital, it leans to the majority class: ahead in accuracy on "
          "{acc_ahead} of {n} pairs, no better in balanced accuracy on {bal_behind}.",
          _oracle, lambda n: n["acc_ahead"] * 2 > n["n"] and n["bal_behind"] >= 1),
]
