"""Notebook 07's exercise checks (text)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from datl_helpers.course.check.domain_adaptation import (
    DOMAINS_SWAPPED,
    LABELS_ON_TARGET,
    LAMBDA_NOT_SET,
    NOT_ZEROED,
    judge_step,
)
from datl_helpers.course.check.feedback import NotYet, exercise


@exercise("7.A the DANN step on text")
def text_dann_step(answer: Callable) -> str:
    from datl_helpers.adaptation import dann
    from datl_helpers.beyond import text

    g = torch.Generator().manual_seed(0)

    def tfidf(n: int, vocab: int = 40) -> torch.Tensor:  # sparse, non-negative rows of unit length
        rows = torch.rand(n, vocab, generator=g) * (torch.rand(n, vocab, generator=g) < 0.2)
        return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-8)

    xs, xt = tfidf(8), tfidf(8)
    ys = torch.randint(0, 2, (8,), generator=g)
    torch.manual_seed(0)
    net, disc = text.TextNet(40, hidden=8, dropout=0.0), dann.DomainClassifier(8, hidden=8)
    label_loss, domain_loss = judge_step(answer, text.text_dann_step, (net, disc), (xs, ys, xt), 0.3, [
        ({"set_lam": False}, LAMBDA_NOT_SET), ({"label_rows": "target"}, LABELS_ON_TARGET),
        ({"swap": True}, DOMAINS_SWAPPED), ({"zero": False}, NOT_ZEROED),
    ])
    return (f"label loss {label_loss:.3f} on the labelled source reviews, domain loss {domain_loss:.3f} on both "
            "through the reversal: notebook 04's step, unchanged, on TF-IDF features.")


_SOURCE_TEXTS = ["a moving film with a great cast", "the plot is dull and the film drags",
                 "great acting, a moving story", "dull dialogue and a weak plot"]
_TARGET_TEXTS = ["this tea tastes great", "stale cookies, weak flavour", "great coffee, fresh taste",
                 "the chips were stale"]


@exercise("7.1 a vectoriser for two domains")
def text_vectorizer(answer: Callable) -> str:
    vec = answer(_SOURCE_TEXTS, _TARGET_TEXTS, 40)
    if not hasattr(vec, "transform") or not hasattr(vec, "vocabulary_"):
        raise NotYet("return the *fitted* vectoriser (TfidfVectorizer(...).fit(texts)), not a matrix")
    vocab = vec.vocabulary_
    if "tea" not in vocab and "stale" not in vocab:
        raise NotYet("words that only the target uses ('tea', 'stale') are missing: fit on the source texts "
                     "AND the unlabelled target texts")
    if not any(" " in w for w in vocab):
        raise NotYet("no word pairs in the vocabulary: use ngram_range=(1, 2) (uni- and bigrams)")
    if len(vocab) > 40:
        raise NotYet(f"the vocabulary has {len(vocab)} entries; cap it with max_features")
    row = vec.transform(["great film"]).toarray()[0]
    if abs(float(np.linalg.norm(row)) - 1) > 1e-4:
        raise NotYet("rows should be TF-IDF weights with unit length (TfidfVectorizer's default norm)")
    return f"{len(vocab)} words and word pairs from both domains, TF-IDF weighted."


@exercise("7.2 the most domain-specific words")
def domain_words(answer: Callable) -> str:
    words = np.array(["film", "plot", "great", "tea", "stale", "the"])
    coef = np.array([-2.0, -1.5, 0.1, 2.5, 1.0, 0.0])  # negative: says "source", positive: says "target"
    got = answer(coef, words, 2)
    if not isinstance(got, tuple) or len(got) != 2:
        raise NotYet("return a pair: (the k most source-like words, the k most target-like words)")
    source, target = [list(map(str, side)) for side in got]
    if source == ["tea", "stale"] or target == ["film", "plot"]:
        raise NotYet("the sides are swapped: the domain classifier predicts target = 1, so negative weights "
                     "say 'source'")
    if source != ["film", "plot"]:
        raise NotYet(f"most source-like should be ['film', 'plot'] (most negative first), got {source}")
    if target != ["tea", "stale"]:
        raise NotYet(f"most target-like should be ['tea', 'stale'] (most positive first), got {target}")
    return "sorted by the domain classifier's weights: these words give the domain away."


@exercise("7.3 the share of the gap closed")
def gap_closed(answer: Callable) -> str:
    for args, want in (((60.0, 70.0, 80.0), 0.5), ((60.0, 80.0, 80.0), 1.0), ((90.0, 88.0, 98.0), -0.25)):
        got = float(answer(*args))
        if want and math.isclose(got, -want):
            raise NotYet("measure how far DANN moved from source-only toward the oracle: "
                         "(dann - source_only) / (oracle - source_only)")
        if not math.isclose(got, want, abs_tol=1e-6):
            raise NotYet(f"for source-only {args[0]}, DANN {args[1]}, oracle {args[2]} expected {want}, got {got:.3g}"
                         + (" (a DANN below source-only closes a negative share)" if want < 0 else ""))
    return "(dann - source_only) / (oracle - source_only): negative when adaptation hurts."
