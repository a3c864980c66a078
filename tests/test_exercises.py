"""Exercises: the student notebooks are generated and up to date, every solution passes its check,
every stub fails it with the friendly 'not answered yet' message, and typical mistakes are explained.

The exercise sections are self-contained, so they run here in-process (no kernel): each code cell
from '## Exercises' on is executed, and the value of a cell's last expression (a check) collected.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from datl_helpers import __main__ as cli
from datl_helpers import check, exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
STUDENT = NOTEBOOKS / "exercises"
# every course notebook with exercises (those with checks in check.EXERCISES: 01-04, 07, ...)
COURSE = sorted(p.name for p in NOTEBOOKS.glob("0[0-9]_*.ipynb") if p.name[:2] in check.EXERCISES)


def run_exercise_section(nb) -> list:
    """Execute the code cells after the '## Exercises' heading; return every check's Feedback."""
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    namespace: dict = {}
    results = []
    for cell in nb.cells[start:]:
        if cell.cell_type != "code":
            continue
        tree = ast.parse(cell.source)
        last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        body = tree.body[:-1] if last else tree.body
        exec(compile(ast.Module(body=body, type_ignores=[]), "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
            if isinstance(value, check.Feedback):
                results.append(value)
    return results


def test_course_notebooks_have_at_least_three_checked_exercises():
    assert COURSE == ["01_feature_extraction.ipynb", "02_fine_tuning.ipynb", "03_augmentation.ipynb",
                      "04_domain_adversarial.ipynb", "06_adversarial_robustness.ipynb",
                      "07_beyond_images_text.ipynb"]
    for name in COURSE:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert len(exercises.solution_cells(nb)) >= 3, name
        assert len(exercises.exercise_titles(nb)) >= 3, name
        assert len(check.EXERCISES[name[:2]]) >= 3


def test_student_versions_are_generated_and_up_to_date():
    assert exercises.stale(NOTEBOOKS, STUDENT) == [], (
        "regenerate: python -m datl_helpers exercises --out notebooks/exercises")
    assert sorted(p.name for p in STUDENT.glob("*.ipynb")) == COURSE


@pytest.mark.parametrize("name", COURSE)
def test_solutions_pass_their_checks(name, domains):
    results = run_exercise_section(nbformat.read(NOTEBOOKS / name, as_version=4))
    assert len(results) >= 3
    failed = [r for r in results if not r.passed]
    assert not failed, failed


@pytest.mark.parametrize("name", COURSE)
def test_stubs_fail_with_the_friendly_message(name, domains):
    nb = nbformat.read(STUDENT / name, as_version=4)
    assert "NotImplementedError" in "".join(c.source for c in nb.cells if "exercise" in c.metadata.get("tags", []))
    assert "BEGIN SOLUTION" not in "".join(c.source for c in nb.cells)
    results = run_exercise_section(nb)  # no exception escapes: the stubs run, the checks explain
    assert len(results) >= 3
    for r in results:
        assert not r.passed and r.message == check.STUB_MESSAGE
        assert repr(r).startswith("❌ Not yet")


def test_stub_source_keeps_indentation_and_rejects_broken_markers():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    assert exercises.stub_source(src) == "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError"
    for bad in ("x = 1", "### BEGIN SOLUTION\nx = 1", "### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION"):
        with pytest.raises(exercises.ExerciseFormatError):
            exercises.stub_source(bad)


def test_exercises_command_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "student"
    assert cli.main(["exercises", "--out", str(out), "--check"]) == 1  # nothing there yet
    assert "missing or out of date" in capsys.readouterr().err
    assert cli.main(["exercises", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.ipynb")) == COURSE
    assert cli.main(["exercises", "--out", str(out), "--check"]) == 0
    first = (out / COURSE[0]).read_text()
    assert cli.main(["exercises", "--out", str(out)]) == 0
    assert (out / COURSE[0]).read_text() == first  # regenerating gives the same bytes


# ----- typical mistakes get an explanation, not a traceback ---------------------------------


def test_preprocessing_mistakes_are_explained():
    msg = lambda fn: check.to_model_input(fn).message  # noqa: E731
    assert "channels are still last" in msg(lambda im: torch.from_numpy(im).float() / 255)
    assert "divide by 255" in msg(lambda im: torch.from_numpy(im).permute(0, 3, 1, 2).float())
    assert "BGR" in msg(lambda im: torch.from_numpy(im).permute(0, 3, 1, 2).float().flip(1) / 255)
    assert "twice" in msg(lambda im: (torch.from_numpy(im).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25)
    assert "raised ZeroDivisionError" in msg(lambda im: 1 / 0)


def test_freezing_mistakes_are_explained():
    def frozen_head(model, num_classes, hidden):
        model.head = torch.nn.Sequential(torch.nn.Linear(model.feature_dim, hidden), torch.nn.ReLU(),
                                         torch.nn.Linear(hidden, num_classes))
        for p in model.parameters():
            p.requires_grad_(False)

    def no_relu(model, num_classes, hidden):
        frozen_head(model, num_classes, hidden)
        model.head = torch.nn.Sequential(model.head[0], model.head[2])
        for p in model.head.parameters():
            p.requires_grad_(True)

    assert "still has trainable" in check.mlp_probe(lambda m, k, h: m).message
    assert "head is frozen" in check.mlp_probe(frozen_head).message
    assert "put a ReLU" in check.mlp_probe(no_relu).message

    def no_bn(model, k):
        for i, stage in enumerate(model.stages.children()):
            for p in stage.parameters():
                p.requires_grad_(i >= k)

    assert "BatchNorm" in check.freeze_first(no_bn).message


def test_pooled_feature_mistakes_are_explained():
    def pooled(model, x, stage, train_mode=False, grad=False):
        model.train(train_mode)
        with torch.set_grad_enabled(grad):
            h = model.normalize(x)
            for name, module in model.stages.named_children():
                h = module(h)
                if name == stage:
                    return h.mean(dim=(2, 3))

    assert check.pooled_features(pooled).passed
    assert "flattened activations" in check.pooled_features(lambda m, x, s: m.eval().features(x, s).detach()).message
    assert "last stage" in check.pooled_features(lambda m, x, s: m.eval().features(x).detach()).message
    assert "autograd graph" in check.pooled_features(lambda m, x, s: pooled(m, x, s, grad=True)).message
    assert "train mode" in check.pooled_features(lambda m, x, s: pooled(m, x, s, train_mode=True)).message
    assert "for stage 'conv1'" in check.pooled_features(lambda m, x, s: pooled(m, x, "conv2")).message


def test_optimizer_and_penalty_mistakes_are_explained():
    all_decay = lambda m, wd: [{"params": [p for p in m.parameters() if p.requires_grad], "weight_decay": wd}]  # noqa: E731
    assert "weight_decay 0.0" in check.decay_groups(all_decay).message
    everything = lambda m, wd: [{"params": list(m.parameters()), "weight_decay": 0.0}]  # noqa: E731
    assert "frozen" in check.decay_groups(everything).message
    no_key = lambda m, wd: [{"params": [p for p in m.parameters() if p.requires_grad]}]  # noqa: E731
    assert "its own 'weight_decay'" in check.decay_groups(no_key).message
    decay = lambda m, s, k: k * sum((p ** 2).sum() for p in m.stages.parameters())  # noqa: E731
    assert "weight decay" in check.l2sp_penalty(decay).message
    whole = lambda m, s, k: k * sum(((p - s.get(n[7:], p)) ** 2).sum() for n, p in m.named_parameters())  # noqa: E731
    assert "head" in check.l2sp_penalty(whole).message


def test_augmentation_and_statistics_mistakes_are_explained(domains):
    from torchvision.transforms import v2

    assert "mirrors digits" in check.colour_pipeline(lambda: v2.RandomHorizontalFlip()).message
    assert "colours barely change" in check.colour_pipeline(lambda: v2.RandomAffine(degrees=5)).message
    harsh = lambda: v2.Compose([v2.GaussianBlur(9, sigma=5.0), v2.ColorJitter(contrast=(0.05, 0.1))])  # noqa: E731
    assert "hard to read" in check.colour_pipeline(harsh).message
    unpaired = lambda a, b: (np.mean(a) - np.mean(b), np.sqrt(np.var(a, ddof=1) + np.var(b, ddof=1)))  # noqa: E731
    assert "pair them by seed" in check.paired_gain(unpaired).message
    population = lambda a, b: (np.mean(np.subtract(a, b)), np.std(np.subtract(a, b)))  # noqa: E731
    assert "ddof=1" in check.paired_gain(population).message
    assert "answer is" in check.hurts_from(lambda sweep: None).message


def test_dann_mistakes_are_explained():
    assert "passed through unchanged" in check.reverse_without_function(lambda x, c: x).message
    assert "coeff was ignored" in check.reverse_without_function(lambda x, c: 2 * x.detach() - x).message
    assert "identity going forward" in check.reverse_without_function(lambda x, c: -c * x).message
    assert "no gradient flows" in check.reverse_without_function(lambda x, c: x.detach()).message
    assert "starts at 0" in check.dann_lambda(lambda p, g, m: m).message or \
        "start at 0" in check.dann_lambda(lambda p, g, m: m).message
    accuracy_not_error = lambda s, t: 2 * (1 - 2 * 0.95)  # noqa: E731
    assert "error" in check.proxy_a_distance(accuracy_not_error).message
    assert bool(check.proxy_a_distance(lambda s, t: 0.0)) is False


def test_checks_accept_alternatives_and_catch_subtle_mistakes(domains):
    from sklearn.linear_model import LogisticRegression
    from torchvision.transforms import v2

    # a pipeline that changes colour on only 40 % of the images is still a fine answer
    sometimes = lambda: v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1), v2.RandomChannelPermutation()], p=0.4)  # noqa: E731
    assert check.colour_pipeline(sometimes).passed
    # normalising with other statistics is still normalising twice
    imagenet = lambda im: (torch.from_numpy(im).permute(0, 3, 1, 2).float() / 255 - 0.45) / 0.22  # noqa: E731
    assert "twice" in check.to_model_input(imagenet).message
    half = lambda m, s, k: k / 2 * sum(((p - s[n]) ** 2).sum() for n, p in m.stages.named_parameters())  # noqa: E731
    assert "half" in check.l2sp_penalty(half).message

    def on_training_points(s, t):
        x = torch.cat([s, t]).numpy()
        d = np.r_[np.zeros(len(s)), np.ones(len(t))]
        accuracy = LogisticRegression(max_iter=1000).fit(x, d).score(x, d)
        return max(0.0, 2 * (1 - 2 * (1 - accuracy)))

    assert "held-out" in check.proxy_a_distance(on_training_points).message


def test_attack_exercise_mistakes_are_explained():
    import torch.nn.functional as F

    def untargeted(model, x, target, eps):  # the sign of plain FGSM: away from the target class
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), target), x)
        return (x + eps * grad.sign()).clamp(0, 1).detach()

    assert "steps down that loss" in check.targeted_fgsm(untargeted).message

    def linf_step(model, x, y, eps):
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
        return (x + eps * grad.sign()).clamp(0, 1).detach()

    def batch_norm(model, x, y, eps):
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
        return (x + eps * grad / grad.norm()).clamp(0, 1).detach()

    assert "L-infinity step" in check.fgm_l2(linf_step).message
    assert "each image's own norm" in check.fgm_l2(batch_norm).message

    def first_below(curve):
        points = sorted(curve.items())
        return next((e for e, a in points if a <= points[0][1] / 2), None)

    assert "interpolate" in check.half_accuracy_eps(first_below).message
