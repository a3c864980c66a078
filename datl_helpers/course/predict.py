"""Predict, then run: commit to a guess before a headline result, then check it against your own run.

A :class:`Prediction` is a question, its options, and a rule that reads the answer off the numbers of
the run that follows (not off a stored answer). In a notebook:

    predict.ask("03-who-gains")                       # before the run: pick an option
    ...                                               # the run
    predict.reveal("03-who-gains", {"scratch": 21.3, "finetune": 0.4})   # after: your guess against your numbers

:func:`judge` is the plain logic (tested on made-up numbers); :func:`ask` and :func:`reveal` wire it to
ipywidgets and Markdown. Nothing waits for a click: a non-interactive run shows the outcome without a guess.
A guess survives re-running the cell while the kernel lives (:data:`GUESSES`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from datl_helpers.core.errors import QuizFormatError, check_choice
from datl_helpers.course.quiz import inline_html


@dataclass(frozen=True)
class Prediction:
    """A question to answer before a run, and how the run's numbers answer it."""

    id: str
    question: str
    options: Mapping[str, str]  # key -> the option as the learner reads it
    needs: tuple[str, ...]  # the numbers the rule reads
    rule: Callable[[Mapping[str, float]], str]  # numbers -> the key of the option that came true
    why: str  # what the outcome teaches, whichever option came true


def _larger(a: str, b: str, margin: float = 0.0) -> Callable[[Mapping[str, float]], str]:
    """Rule: ``a`` when numbers[a] exceeds numbers[b] by more than ``margin``, ``b`` when the reverse, else 'tie'."""

    def rule(n: Mapping[str, float]) -> str:
        d = n[a] - n[b]
        return a if d > margin else b if d < -margin else "tie"

    return rule


def _best(*keys: str) -> Callable[[Mapping[str, float]], str]:
    return lambda n: max(keys, key=lambda k: n[k])


def _dann_vs_source_only(n: Mapping[str, float]) -> str:
    d = n["dann"] - n["source-only"]
    return "gain" if d > 2 else "loss" if d < -2 else "tie"


def _kept_share(n: Mapping[str, float]) -> str:
    share = n["attacked"] / max(n["clean"], 1e-9)
    return "most" if share > 0.5 else "none" if share < 0.1 else "some"


PREDICTIONS: dict[str, Prediction] = {p.id: p for p in (
    Prediction(
        "01-best-with-ten-labels",
        "With 10 labelled images per class of `mnistm`, which will score highest on its test set?",
        {"scratch": "the network trained from scratch", "linear-probe": "the frozen backbone with a new head (linear probe)",
         "finetune": "the pretrained backbone, fine-tuned"},
        ("scratch", "linear-probe", "finetune"), _best("scratch", "linear-probe", "finetune"),
        "With this few labels, features learnt on 40,000 `syn` images are worth more than anything 100 images can "
        "teach a network from scratch; fine-tuning can then adapt those features a little to the target.",
    ),
    Prediction(
        "02-too-high-rate",
        "At 10 labels per class, will fine-tuning every stage at a rate ten times the careful head rate (the too-high LR) "
        "beat layer-wise learning rates on the target?",
        {"too-high LR": "yes, a high rate learns the target faster", "layer-wise LRs": "no, layer-wise rates win",
         "tie": "they end within one point"},
        ("too-high LR", "layer-wise LRs"), _larger("too-high LR", "layer-wise LRs", 1.0),
        "With 100 labels, large steps overwrite pretrained features that 100 images cannot teach again; the "
        "source accuracy shows how much of the backbone was forgotten.",
    ),
    Prediction(
        "03-who-gains",
        "At 10 labels per class, who gains more from heavy augmentation: the network trained from scratch or the "
        "fine-tuned pretrained backbone?",
        {"scratch": "scratch gains more", "finetune": "fine-tuning gains more", "tie": "about the same (within one point)"},
        ("scratch", "finetune"), _larger("scratch", "finetune", 1.0),
        "Augmentation teaches invariances (to position, colour, thickness); a backbone pretrained on varied images "
        "already has many of them, so it has less to gain.",
    ),
    Prediction(
        "04-dann-beats-source-only",
        "On the first pair (`mnist → mnistm`), without a single target label, will DANN beat the same network trained "
        "on the source alone (same protocol, same budget) on the target test set?",
        {"gain": "yes, by more than 2 points", "tie": "within 2 points either way", "loss": "no, it loses more than 2 points"},
        ("dann", "source-only"), _dann_vs_source_only,
        "DANN can only help where aligning the two feature distributions also lines up the classes; how much it "
        "gains depends on the pair, on λ and on the budget, so it is measured, not assumed.",
    ),
    Prediction(
        "06-pgd-keeps",
        "Under PGD-10 at ε = 8/255 (at most 8 grey levels per pixel), how much of its clean accuracy will the "
        "fine-tuned model keep?",
        {"most": "more than half of it", "some": "a tenth to a half of it", "none": "almost none (less than a tenth)"},
        ("clean", "attacked"), _kept_share,
        "A network trained only for clean accuracy has steep directions in input space that no person would "
        "notice; pretraining on varied data softens this, adversarial training is what targets it.",
    ),
    Prediction(
        "07-dann-on-spam",
        "On the spam pair, where the share of spam changes between the collections, will DANN beat source-only?",
        {"dann": "yes, by more than a point", "source-only": "no, it loses more than a point",
         "tie": "within a point either way"},
        ("dann", "source-only"), _larger("dann", "source-only", 1.0),
        "Aligning feature distributions cannot fix a shift in the labels themselves: if spam is more common in the "
        "target, forcing both collections to look alike pulls the wrong way.",
    ),
    Prediction(
        "08-what-fixes-label-shift",
        "From Cleveland (46 % with heart disease) to the VA hospital (74 %), which method will gain more accuracy "
        "over source-only on the VA patients: DANN or the label-shift correction?",
        {"dann": "DANN, by more than a point", "label-shift": "the label-shift correction, by more than a point",
         "tie": "within a point of each other"},
        ("dann", "label-shift"), _larger("dann", "label-shift", 1.0),
        "Under label shift the classes' own distributions stay put while their proportions move: re-weighting the "
        "predictions by the new proportions fits that shift, as far as the new proportion is estimated well; "
        "forcing the two hospitals' features to look alike does not, since the hospitals *should* look different "
        "when one has more sick patients.",
    ),
)}

GUESSES: dict[str, str | None] = {}


def get(prediction_id: str) -> Prediction:
    return PREDICTIONS[check_choice("prediction", prediction_id, PREDICTIONS, QuizFormatError)]


def outcome(prediction_id: str, numbers: Mapping[str, float]) -> str:
    """The key of the option that the numbers made true."""
    p = get(prediction_id)
    missing = [k for k in p.needs if k not in numbers]
    if missing:
        raise QuizFormatError(f"{prediction_id} reads {', '.join(p.needs)}; missing: {', '.join(missing)}")
    return p.rule(numbers)


def judge(prediction_id: str, numbers: Mapping[str, float], guess: str | None = None, unit: str = " %") -> str:
    """Markdown: your guess, your numbers, whether they agree, and what that teaches."""
    p = get(prediction_id)
    came = outcome(prediction_id, numbers)
    shown = ", ".join(f"{k} {numbers[k]:.1f}{unit}" for k in p.needs)
    lines = [f"**Your run:** {shown} → *{p.options.get(came, came)}*."]
    if guess is None:
        lines.append("You did not commit to a guess above; try it next time before the run.")
    else:
        check_choice("guess", guess, p.options, QuizFormatError)
        verdict = "✅ Your prediction matches your run." if guess == came else (
            f"❌ You predicted *{p.options[guess]}*; your run says otherwise.")
        lines.append(verdict)
    lines.append(p.why)
    return " ".join(lines)


def ask(prediction_id: str):
    """Radio buttons for the guess (none chosen until you click); the choice is remembered in GUESSES."""
    import ipywidgets as w

    p = get(prediction_id)
    buttons = w.RadioButtons(options=[(text, key) for key, text in p.options.items()], index=None,
                             layout=w.Layout(width="max-content"))
    if GUESSES.get(prediction_id) in p.options:
        buttons.value = GUESSES[prediction_id]

    def keep(change):
        GUESSES[prediction_id] = change["new"]

    buttons.observe(keep, names="value")
    return w.VBox([w.HTML(f"<b>Predict before you run:</b> {inline_html(p.question)}"), buttons])


def reveal(prediction_id: str, numbers: Mapping[str, float], unit: str = " %") -> None:
    """Show :func:`judge` for the guess made with :func:`ask` (if any)."""
    from IPython.display import Markdown, display

    display(Markdown(judge(prediction_id, numbers, GUESSES.get(prediction_id), unit)))
