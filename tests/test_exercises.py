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
    """Execute the code cells of the '## Exercises' section (up to the next '## ' heading, an appendix say);
    return every check's Feedback."""
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    namespace: dict = {}
    results = []
    for cell in nb.cells[start:]:
        if cell.cell_type == "markdown" and cell.source.startswith("## ") and not cell.source.startswith("## Exercises"):
            break
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
                      "07_beyond_images_text.ipynb", "08_hospitals.ipynb"]
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


def test_early_stopping_mistakes_are_explained_and_the_answer_agrees_with_fit():
    def stop_epochs(acc, patience, ties=False, base=1, extra=0):
        best, best_epoch, since = float("-inf"), 0, 0
        for epoch, a in enumerate(acc, start=base):
            if a > best or (ties and a == best):
                best, best_epoch, since = a, epoch, 0
            else:
                since += 1
            if since >= patience + extra:
                return best_epoch, epoch
        return best_epoch, len(acc) - 1 + base

    assert check.early_stopping(stop_epochs).passed
    assert "from 1" in check.early_stopping(lambda a, p: stop_epochs(a, p, base=0)).message
    assert "tie" in check.early_stopping(lambda a, p: stop_epochs(a, p, ties=True)).message
    assert "not 3" in check.early_stopping(lambda a, p: stop_epochs(a, p, extra=1)).message
    assert "before the end" in check.early_stopping(lambda a, p: (stop_epochs(a, p)[0], len(a))).message

    # the library's twin: train.fit's early stopping stops at the same epoch and keeps the same best one
    from datl_helpers import models, train

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (64,), generator=g)
    model = models.replace_head(models.DigitNet(), 10)
    history = train.fit(model, x[:48], y[:48], train.FitConfig(epochs=12, steps_per_epoch=1, batch_size=16, lr=3e-2,
                                                               patience=2), x_val=x[48:], y_val=y[48:], device="cpu")
    assert (history.best_epoch, len(history)) == stop_epochs(history["val_accuracy"], 2)


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


# ----- the in-flow exercises: each notebook's mechanism, written by the student where it is taught -----


def mechanism(notebook: str) -> dict:
    """Run the notebook's cells tagged ``mechanism`` (definitions only) and return what they define
    (as in tests/test_notebook_mechanism.py)."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    cells = [c for c in nb.cells if "mechanism" in c.metadata.get("tags", [])]
    assert cells, f"{notebook} has no cell tagged 'mechanism'"
    namespace = {"torch": torch}
    for cell in cells:
        exec(cell.source, namespace)
    return namespace


IN_FLOW = [
    ("01_feature_extraction.ipynb", "make_linear_probe", check.make_linear_probe),
    ("01_feature_extraction.ipynb", "probe_step", check.probe_step),
    ("02_fine_tuning.ipynb", "layerwise_param_groups", check.layerwise_param_groups),
    ("02_fine_tuning.ipynb", "unfreeze_for_epoch", check.unfreeze_for_epoch),
    ("02_fine_tuning.ipynb", "l2sp_penalty", check.l2sp_penalty),
    ("03_augmentation.ipynb", "augment_by_groups", check.augment_by_groups),
    ("04_domain_adversarial.ipynb", "GradReverse", check.grad_reverse),
    ("04_domain_adversarial.ipynb", "dann_step_by_hand", check.dann_step),
    ("06_adversarial_robustness.ipynb", "fgsm_by_hand", check.fgsm),
    ("06_adversarial_robustness.ipynb", "pgd_by_hand", check.pgd),
    ("07_beyond_images_text.ipynb", "text_dann_step_by_hand", check.text_dann_step),
    ("08_hospitals.ipynb", "preprocess_by_hand", check.preprocess),
    ("08_hospitals.ipynb", "importance_weights_by_hand", check.importance_weights),
    ("08_hospitals.ipynb", "em_priors_by_hand", check.em_priors),
]


def test_in_flow_checks_are_all_tested():
    assert [c for _, _, c in IN_FLOW] == [c for checks in check.IN_FLOW.values() for c in checks]
    for key, checks in check.IN_FLOW.items():
        assert {nb[:2] for nb, _, c in IN_FLOW if c in checks} == {key}
    assert [c.__name__ for _, _, c in IN_FLOW] == [  # the names the notebooks call
        "make_linear_probe", "probe_step", "layerwise_param_groups", "unfreeze_for_epoch", "l2sp_penalty", "augment_by_groups",
        "grad_reverse", "dann_step", "fgsm", "pgd", "text_dann_step", "preprocess", "importance_weights",
        "em_priors"]


@pytest.mark.parametrize("notebook, name, exercise_check", IN_FLOW, ids=[name for _, name, _ in IN_FLOW])
def test_in_flow_mechanism_passes_its_check(notebook, name, exercise_check):
    result = exercise_check(mechanism(notebook)[name])
    assert result.passed is True, result
    assert repr(result).startswith("✅ Correct") and "\n" not in result.message


class StubReverse(torch.autograd.Function):  # the student version's GradReverse before it is answered
    @staticmethod
    def forward(ctx, x, coeff):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError


@pytest.mark.parametrize("notebook, name, exercise_check", IN_FLOW, ids=[name for _, name, _ in IN_FLOW])
def test_in_flow_stub_is_not_answered_yet(notebook, name, exercise_check):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = exercise_check(StubReverse if name == "GradReverse" else stub)
    assert not result.passed and result.message == check.STUB_MESSAGE


def test_linear_probe_mistakes_are_explained():
    import torch.nn.functional as F

    def probe(backbone, num_classes, head=True, freeze=True, size=None, freeze_head=False):
        if head:
            backbone.head = torch.nn.Linear(backbone.feature_dim, size or num_classes)
        for p in (backbone.parameters() if freeze_head else backbone.stages.parameters()):
            p.requires_grad_(not freeze)
        return backbone

    msg = lambda **kw: check.make_linear_probe(lambda b, k: probe(b, k, **kw)).message  # noqa: E731
    assert "still has trainable parameters" in msg(freeze=False)
    assert "head is frozen too" in msg(freeze_head=True)
    assert "one score per class" in msg(size=10)
    assert "still the pretrained 10-class head" in msg(head=False)

    def step(model, opt, xb, yb, stages_eval=True, zero=True, update=True):
        model.train()
        if stages_eval:
            model.stages.eval()
        loss = F.cross_entropy(model(xb), yb)
        if zero:
            opt.zero_grad()
        loss.backward()
        if update:
            opt.step()
        return loss.item()

    msg = lambda **kw: check.probe_step(lambda m, o, x, y: step(m, o, x, y, **kw)).message  # noqa: E731
    assert "running statistics moved" in msg(stages_eval=False)
    assert "gradients were not zeroed" in msg(zero=False)
    assert "call opt.step()" in msg(update=False)
    assert check.probe_step(step).passed
    assert "return the loss as a float" in check.probe_step(lambda m, o, x, y: step(m, o, x, y) and None).message


def test_layerwise_and_unfreezing_mistakes_are_explained():
    from torch import nn

    def groups(model, head_lr, decay, reverse=False, head=True, exponent_from=0):
        parts = [*model.stages.named_children(), *([("head", model.head)] if head else [])]
        n = len(model.stage_names)
        lrs = [head_lr * decay ** (i if reverse else n - i - exponent_from) for i in range(len(parts))]
        return [{"name": name, "params": list(part.parameters()), "lr": lr} for (name, part), lr in zip(parts, lrs)]

    msg = lambda fn: check.layerwise_param_groups(fn).message  # noqa: E731
    assert "wrong way round" in msg(lambda m, lr, d: groups(m, lr, d, reverse=True))
    assert "the head is in no group" in msg(lambda m, lr, d: groups(m, lr, d, head=False))
    assert "in two groups" in msg(lambda m, lr, d: [*groups(m, lr, d), {"params": list(m.head.parameters()), "lr": lr}])
    assert "decay times slower" in msg(lambda m, lr, d: groups(m, lr, d, exponent_from=1)[:-1] + groups(m, lr, d)[-1:])
    assert "one rate" in msg(lambda m, lr, d: [{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(m.parameters())])

    def unfreeze(model, epoch, every, from_top=True, bn_eval=True, head=True):
        stages = list(model.stages.children())
        k = min(len(stages), epoch // every)
        training = set(range(len(stages) - k, len(stages))) if from_top else set(range(k))
        for i, stage in enumerate(stages):
            stage.requires_grad_(i in training)
            if bn_eval and i not in training:
                for module in stage.modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.eval()
        model.head.requires_grad_(head)

    msg = lambda **kw: check.unfreeze_for_epoch(lambda m, e, every: unfreeze(m, e, every, **kw)).message  # noqa: E731
    assert check.unfreeze_for_epoch(unfreeze).passed
    assert "the bottom stages" in msg(from_top=False)
    assert "BatchNorm is in train mode" in msg(bn_eval=False)
    assert "the head is frozen" in msg(head=False)


def test_group_augmentation_mistakes_are_explained():
    def by_groups(x, pipeline, seed, group_size=8, fork=True, seeded=True, groups=True, clamp=True):
        def draw():
            if seeded:
                torch.manual_seed(seed)
            out = torch.cat([pipeline(g) for g in x.split(group_size)]) if groups else pipeline(x)
            return out.clamp(0, 1) if clamp else out

        if not fork:
            return draw()
        with torch.random.fork_rng(devices=[]):
            return draw()

    msg = lambda **kw: check.augment_by_groups(lambda x, p, seed, group_size=8: by_groups(x, p, seed, group_size, **kw)).message  # noqa: E731
    state = torch.random.get_rng_state()
    assert check.augment_by_groups(by_groups).passed
    assert "one draw for the whole batch" in msg(groups=False)
    assert "same seed gave different images" in msg(seeded=False)
    assert "global random state changed" in msg(fork=False)
    assert "outside [0, 1]" in msg(clamp=False)
    assert "not a fixed 8" in check.augment_by_groups(lambda x, p, seed, group_size=8: by_groups(x, p, seed)).message
    assert torch.equal(torch.random.get_rng_state(), state)  # the check itself leaves the random state alone


def reversal(sign=-1.0, scaled=True, forward_sign=1.0, two_grads=True):
    """A GradReverse with one thing changed."""

    class Reverse(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, coeff):
            ctx.coeff = coeff
            return forward_sign * x.view_as(x)

        @staticmethod
        def backward(ctx, grad_output):
            grad = sign * (ctx.coeff if scaled else 1.0) * grad_output
            return (grad, None) if two_grads else grad

    return Reverse


def step_by_hand(model, disc, opt, source_x, source_y, target_x, lam, set_lam=True, per_domain=True,
                 label_rows="source", swap=False):
    """Notebook 04's dann_step_by_hand with one thing changed (it is notebook 07's step too)."""
    import torch.nn.functional as F

    if set_lam:
        disc.reverse.coeff = lam
    if per_domain:
        feats = torch.cat([model.features(source_x), model.features(target_x)])
    else:
        feats = model.features(torch.cat([source_x, target_x]))
    n = len(source_x)
    rows = {"source": feats[:n], "target": feats[n:], "both": feats}[label_rows]
    label_loss = F.cross_entropy(model.head(rows), source_y)
    domain_labels = torch.cat([torch.zeros(n), torch.ones(len(target_x))])
    domain_loss = F.binary_cross_entropy_with_logits(disc(feats), 1 - domain_labels if swap else domain_labels)
    opt.zero_grad()
    (label_loss + domain_loss).backward()
    opt.step()
    return label_loss.item(), domain_loss.item()


def test_reversal_and_dann_step_mistakes_are_explained():
    msg = lambda **kw: check.grad_reverse(reversal(**kw)).message  # noqa: E731
    assert check.grad_reverse(reversal()).passed
    assert "passed through unchanged" in msg(sign=1.0, scaled=False)
    assert "not scaled by coeff" in msg(scaled=False)
    assert "but not negated" in msg(sign=1.0)
    assert "identity going forward" in msg(forward_sign=-1.0)
    assert "one gradient per input" in msg(two_grads=False)
    assert "pass the class itself" in check.grad_reverse(lambda x, c: x).message

    def step(**kw):
        return check.dann_step(lambda *args: step_by_hand(*args, **kw))

    assert step().passed
    assert "lambda was not set" in step(set_lam=False).message
    assert "one forward pass" in step(per_domain=False).message
    assert "used the target rows" in step(label_rows="target").message
    assert "the target has no labels" in step(label_rows="both").message
    assert "domain labels are swapped" in step(swap=True).message

    def no_zero_grad(model, disc, opt, *args):
        opt.zero_grad = lambda *a, **k: None
        return step_by_hand(model, disc, opt, *args)

    assert "not zeroed" in check.dann_step(no_zero_grad).message
    assert "return the two losses" in check.dann_step(lambda *args: step_by_hand(*args)[0]).message


def test_fgsm_and_pgd_mistakes_are_explained():
    import torch.nn.functional as F

    def gradient(model, x, y):
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
        return grad

    def fgsm(model, x, y, eps, sign=1.0, use_sign=True, clamp=True, size=1.0):
        grad = gradient(model, x, y)
        adv = x + sign * size * eps * (grad.sign() if use_sign else grad)
        return adv.clamp(0, 1) if clamp else adv

    msg = lambda **kw: check.fgsm(lambda m, x, y, eps: fgsm(m, x, y, eps, **kw)).message  # noqa: E731
    assert check.fgsm(fgsm).passed
    assert "gradient itself" in msg(use_sign=False)
    assert "stepped down the loss" in msg(sign=-1.0)
    assert "left [0, 1]" in msg(clamp=False)
    assert "more than eps" in msg(size=2.0)

    def pgd(model, x, y, eps, steps=10, generator=None, start=True, project=True, clamp=True, sign=1.0, gen=True):
        alpha = 2.5 * eps / steps
        adv = x.clone()
        if start:
            adv = (x + eps * (2 * torch.rand(x.shape, generator=generator if gen else None) - 1)).clamp(0, 1)
        for _ in range(steps):
            adv = adv + sign * alpha * gradient(model, adv, y).sign()
            if project:
                adv = torch.min(torch.max(adv, x - eps), x + eps)
            if clamp:
                adv = adv.clamp(0, 1)
        return adv

    msg = lambda **kw: check.pgd(lambda m, x, y, eps, steps=10, generator=None: pgd(m, x, y, eps, steps, generator, **kw)).message  # noqa: E731
    assert check.pgd(pgd).passed
    assert "project back into the eps-ball" in msg(project=False)
    assert "left [0, 1]" in msg(clamp=False)
    assert "no random start" in msg(start=False)
    assert "not higher than at the clean" in msg(sign=-1.0)
    assert "same generator gave different" in msg(gen=False)


def test_text_dann_step_mistakes_are_explained():
    def step(**kw):
        return check.text_dann_step(lambda *args: step_by_hand(*args, **kw))

    assert step().passed and step(per_domain=False).passed  # no BatchNorm here: one pass or two is the same
    assert "lambda was not set" in step(set_lam=False).message
    assert "used the target rows" in step(label_rows="target").message
    assert "the target has no labels" in step(label_rows="both").message
    assert "domain labels are swapped" in step(swap=True).message


@pytest.mark.parametrize("name", COURSE)
def test_mechanism_is_an_exercise_in_the_flow(name):
    """Where the mechanism is taught: the exercise first, the solution folded below it, then its check;
    in the student version the same cell is open, a stub, and the text says what to do."""
    course = nbformat.read(NOTEBOOKS / name, as_version=4)
    student = nbformat.read(STUDENT / name, as_version=4)
    in_flow = [i for i, c in enumerate(course.cells) if {"mechanism", "solution"} <= set(c.metadata.get("tags", []))]
    assert in_flow, f"{name}: its mechanism is not an exercise in the flow"
    first_end_exercise = next(i for i, c in enumerate(course.cells) if c.source.startswith("## Exercises"))
    for i in in_flow:
        assert i < first_end_exercise
        before, cell, after = course.cells[i - 1], course.cells[i], course.cells[i + 1]
        assert before.source.startswith("### Exercise") and exercises.IN_FLOW_MARK in before.source
        assert cell.metadata["jupyter"]["source_hidden"] is True
        assert after.cell_type == "code" and "check." in after.source
        stub = next(c for c in student.cells if c.metadata.get("tags", []) == ["mechanism", "exercise"]
                    and c.source.split("\n")[0] == cell.source.split("\n")[0])
        assert "raise NotImplementedError" in stub.source and "source_hidden" not in stub.metadata.get("jupyter", {})
    assert "*Your turn.*" in "".join(c.source for c in student.cells)
