"""Notebook 03's exercise checks (augmentation)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from datl_helpers.course.check.feedback import NotYet, close, exercise


def _gain_pipeline() -> Callable:
    """The notebook's pipeline (geometry and colour at strength 1) plus a random gain that can push pixels past 1."""
    from datl_helpers.transfer import augment

    course = augment.build_pipeline(1.0, kinds=("geometry", "colour"))

    def pipeline(group: torch.Tensor) -> torch.Tensor:
        return course(group) * (0.7 + 0.6 * torch.rand(()))

    return pipeline


@exercise("3.A augmentation, one draw per group")
def augment_by_groups(answer: Callable) -> str:
    pipeline = _gain_pipeline()
    x = torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    def reference(seed: int, size: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.cat([pipeline(g) for g in x.split(size)]).clamp(0, 1)

    with torch.random.fork_rng(devices=[]):  # the check leaves the notebook's random state as it found it
        torch.manual_seed(0)
        before = torch.random.get_rng_state()
        out = answer(x.clone(), pipeline, seed=7)
        state_kept = torch.equal(torch.random.get_rng_state(), before)
        torch.manual_seed(1)  # another global state: a seeded answer does not care
        again = answer(x.clone(), pipeline, seed=7)
        other = answer(x.clone(), pipeline, seed=8)
        fives = answer(x.clone(), pipeline, seed=7, group_size=5)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise NotYet(f"return the augmented batch, a tensor of shape {tuple(x.shape)}")
    if out.min() < 0 or out.max() > 1:
        raise NotYet(f"values reach {out.max().item():.2f}, outside [0, 1]: a transform can push pixels past 1 (this "
                     "pipeline's random gain does), so clamp the result with .clamp(0, 1)")
    if not close(out, again):
        raise NotYet("two calls with the same seed gave different images: call torch.manual_seed(seed) before "
                     "drawing, so that a run can be repeated exactly")
    if close(out, other):
        raise NotYet("seeds 7 and 8 gave the same images: the seed must decide the draw (torch.manual_seed(seed))")
    if not state_kept:
        raise NotYet("the global random state changed: seed and draw inside torch.random.fork_rng(devices=[]), or "
                     "every call resets the training loop's own random numbers (shuffling, dropout)")
    if close(out, reference(7, len(x))):
        raise NotYet("one draw for the whole batch: every image got the same rotation and colour change; transform "
                     "each group of x.split(group_size) on its own, so one batch shows many variations")
    if close(out, reference(7, 1)):
        raise NotYet("one draw per image ignores group_size: draw once per group of group_size images "
                     "(x.split(group_size)), which costs group_size times fewer draws")
    if not close(out, reference(7, 8)):
        raise NotYet("expected torch.manual_seed(seed), then pipeline(group) for each group of x.split(group_size), "
                     "concatenated and clamped to [0, 1]")
    if not isinstance(fives, torch.Tensor) or not close(fives, reference(7, 5)):
        raise NotYet("group_size=5 did not give groups of 5: split with x.split(group_size), not a fixed 8")
    return ("3 draws for 20 images, the same images for the same seed, and the training loop's random state "
            "untouched: variety at a fraction of the per-image cost.")


def _flips(transform) -> list[str]:
    from torchvision.transforms import v2

    found = []
    stack = [transform]
    while stack:
        t = stack.pop()
        if isinstance(t, (v2.RandomHorizontalFlip, v2.RandomVerticalFlip)):
            found.append(type(t).__name__)
        stack.extend(getattr(t, "transforms", []) or [])
    return found


@exercise("3.1 augmentations for a colourful target")
def colour_pipeline(answer: Callable) -> str:
    from datl_helpers.core import models, train
    from datl_helpers.data import registry as data

    transform = answer()
    if not callable(transform):
        raise NotYet("return a transform (for example v2.Compose([...])) that takes a batch of images")
    if _flips(transform):
        raise NotYet(f"{_flips(transform)[0]} mirrors digits: a mirrored 2 or 5 is not a digit the test "
                     "set contains; leave flips out")
    syn = data.load_domain("syn")
    x_u8, y = data.sample_test_set(syn, 400)
    x = data.to_float(x_u8)
    torch.manual_seed(0)
    # one random draw per image, as training would use it (a single draw for the whole batch would
    # judge a pipeline by one roll of its dice)
    out = [transform(image.clone()) for image in x]
    if not all(isinstance(o, torch.Tensor) and o.shape == x.shape[1:] for o in out):
        raise NotYet(f"the transform must keep an image's shape {tuple(x.shape[1:])} (and a batch's)")
    out = torch.stack(out)
    if out.min() < -0.01 or out.max() > 1.01:
        raise NotYet("values left [0, 1]: clamp them (x.clamp(0, 1)) or use transforms that stay in range")
    colour_change = (out.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs().mean().item()
    if colour_change < 0.02:
        raise NotYet(f"colours barely change (mean channel shift {colour_change:.3f}, below 0.02): mnistm "
                     "differs from mnist in colour and texture, so add or strengthen v2.ColorJitter, "
                     "v2.RandomChannelPermutation or v2.RandomInvert")
    torch.manual_seed(1)
    if torch.equal(torch.stack([transform(image.clone()) for image in x[:32]]), out[:32]):
        raise NotYet("two calls give the same images: an augmentation must be random")
    model = models.load_pretrained()
    clean = train.evaluate(model, x_u8, y, device="cpu")["accuracy"]
    with torch.no_grad():
        model.eval()
        kept = (model(out).argmax(1) == y).float().mean().item()
    if kept < 0.6:
        raise NotYet(f"the augmented digits are hard to read: the pretrained backbone gets {100 * kept:.0f} % of "
                     f"them (clean: {100 * clean:.0f} %, needed: 60 %); lower the strengths so labels stay true")
    return (f"random colour changes ({colour_change:.2f} mean channel shift), no flips, and the digits "
            f"stay readable: the backbone still gets {100 * kept:.0f} % (clean {100 * clean:.0f} %).")


@exercise("3.2 a paired gain over seeds")
def paired_gain(answer: Callable) -> str:
    with_aug = [88.1, 86.0, 90.2]
    without = [87.0, 84.1, 88.8]
    result = answer(with_aug, without)
    try:
        mean, std = (float(v) for v in result)
    except (TypeError, ValueError):
        raise NotYet("return two numbers: (mean, std) of the per-seed gains") from None
    diffs = np.subtract(with_aug, without)
    if not math.isclose(mean, diffs.mean(), abs_tol=1e-6):
        raise NotYet(f"the mean gain is {diffs.mean():.3f}, got {mean:.3f}: average with_aug - without")
    if math.isclose(std, diffs.std(ddof=0), abs_tol=1e-6):
        raise NotYet("use the sample standard deviation (ddof=1): with three seeds the difference is large")
    unpaired = math.sqrt(np.var(with_aug, ddof=1) + np.var(without, ddof=1))
    if math.isclose(std, unpaired, abs_tol=1e-3):
        raise NotYet("that spread treats the runs as independent; pair them by seed: take the "
                     "difference per seed first, then its std (the shared seed cancels out)")
    if not math.isclose(std, diffs.std(ddof=1), abs_tol=1e-6):
        raise NotYet(f"the std of the per-seed gains is {diffs.std(ddof=1):.3f}, got {std:.3f}")
    return (f"gain {mean:.2f} ± {std:.2f} points; unpaired the spread would look {unpaired:.2f}, "
            "hiding a gain that every seed shows.")


@exercise("3.3 where augmentation starts to hurt")
def hurts_from(answer: Callable) -> str:
    cases = [
        ({0.0: 62.1, 0.25: 66.0, 0.5: 57.7, 0.75: 29.0, 1.0: 19.1}, 0.5),
        ({0.0: 88.1, 0.25: 88.3, 0.5: 87.7, 0.75: 86.1}, 0.5),
        ({0.0: 80.0, 0.5: 81.0, 0.25: 82.0, 1.0: 80.5}, None),  # unsorted keys, never below none
        ({0.0: 81.8, 0.25: 81.7, 0.5: 81.0}, 0.25),
    ]
    for sweep, expected in cases:
        got = answer(dict(sweep))
        if got != expected:
            hint = ("sort the strengths first" if sorted(sweep) != list(sweep) else
                    "find the best strength, then the first stronger one below the strength-0 accuracy")
            raise NotYet(f"for {sweep} the answer is {expected}, got {got}: {hint}")
    return "you found the turn-over: past it, augmentation costs accuracy (measure, don't assume)."
