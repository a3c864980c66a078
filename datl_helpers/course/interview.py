"""A mock interview: write your answer, reveal a short model answer, grade yourself on a rubric.

The cards are data (the ``interview`` list of each notebook's quiz file, see :mod:`datl_helpers.course.quiz`).
A model answer may cite numbers of your own run through fields that :func:`fill` replaces:
``{probe:pct}`` gives "54.3 %", ``{gain:pts}`` gives "+3.2 points", ``{labels}`` the value as it is.

The logic is plain Python (:class:`Session`: answers, reveals, rubric ticks, score), tested without a
kernel; :func:`practice` and :func:`flashcards` only wire ipywidgets to it. Nothing waits for a click, so a
non-interactive run passes straight through, and what you typed survives re-running the cell as long
as the kernel lives (the session is kept by name in :data:`SESSIONS`).
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

from datl_helpers.core.errors import QuizFormatError
from datl_helpers.course.quiz import inline_html


class _Numbers(string.Formatter):
    """Formats ``{name:pct}`` and ``{name:pts}`` like notebook 05's tables; a missing number shows as 'n/a'."""

    def format_field(self, value, format_spec):
        from datl_helpers.course.summary import pct, points

        if format_spec == "pct":
            return pct(value)
        if format_spec == "pts":
            return points(value)
        if value is None:
            return "n/a"
        return super().format_field(value, format_spec)


def fields(template: str) -> list[str]:
    """The names of the numbers a model answer cites."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def fill(template: str, numbers: Mapping | None = None) -> str:
    """The model answer with its numbers filled in from ``numbers`` (for example ``facts.collect``)."""
    names = fields(template)
    if names and numbers is None:
        raise QuizFormatError(f"this answer cites {', '.join(names)}: pass the numbers (facts.collect(...))")
    # facts.collect is a defaultdict: a number the results at hand lack shows as 'n/a'; a plain dict must have it
    missing = [] if hasattr(numbers, "default_factory") else [n for n in names if n not in (numbers or {})]
    if missing:
        raise QuizFormatError(f"no number called {', '.join(missing)}; the answer can cite {', '.join(sorted(numbers))}")
    return _Numbers().vformat(template, (), numbers or {})


@dataclass
class Session:
    """What one learner did with a deck of cards: typed answers, revealed answers, ticked rubric points."""

    cards: list[dict]
    answers: dict[str, str] = field(default_factory=dict)
    revealed: set[str] = field(default_factory=set)
    ticked: dict[str, set[int]] = field(default_factory=dict)

    def card(self, card_id: str) -> dict:
        for c in self.cards:
            if c["id"] == card_id:
                return c
        raise QuizFormatError(f"no card {card_id!r} in this session")

    def write(self, card_id: str, text: str) -> None:
        self.card(card_id)
        self.answers[card_id] = text

    def reveal(self, card_id: str) -> None:
        self.card(card_id)
        self.revealed.add(card_id)

    def tick(self, card_id: str, point: int, on: bool = True) -> None:
        """Mark rubric point ``point`` (0-based) as covered by your answer; only after revealing it."""
        rubric = self.card(card_id)["rubric"]
        if card_id not in self.revealed:
            raise QuizFormatError("reveal the model answer before grading yourself against its rubric")
        if not 0 <= point < len(rubric):
            raise QuizFormatError(f"rubric point {point} does not exist; this card has {len(rubric)}")
        marks = self.ticked.setdefault(card_id, set())
        marks.add(point) if on else marks.discard(point)

    def score(self) -> tuple[int, int]:
        """(rubric points ticked, rubric points of the revealed cards)."""
        total = sum(len(self.card(i)["rubric"]) for i in self.revealed)
        return sum(len(self.ticked.get(i, ())) for i in self.revealed), total

    def summary(self) -> str:
        got, total = self.score()
        if not self.revealed:
            return "No answer revealed yet: write yours, reveal the model answer, tick what you covered."
        weak = [self.card(i)["question"] for i in self.revealed
                if len(self.ticked.get(i, ())) < len(self.card(i)["rubric"]) / 2]
        text = f"Score: {got} of {total} rubric points on {len(self.revealed)} of {len(self.cards)} questions."
        if weak:
            text += " Worth another pass: " + "; ".join(f"*{q}*" for q in weak)
        return text


SESSIONS: dict[str, Session] = {}


def session(name: str, cards: list[dict]) -> Session:
    """The session called ``name``, kept while the kernel lives; a new one when the deck changed."""
    old = SESSIONS.get(name)
    if old is None or [c["id"] for c in old.cards] != [c["id"] for c in cards]:
        SESSIONS[name] = Session(cards)
    return SESSIONS[name]


def cards(notebooks=None) -> list[dict]:
    """The interview cards of the given notebooks (numbers or names), or of every notebook."""
    from datl_helpers.course import quiz

    names = quiz.notebooks() if notebooks is None else [quiz.resolve(n) for n in notebooks]
    return [dict(c, notebook=n) for n in names for c in quiz.load(n)["interview"]]


def draw(deck: list[dict], n: int, seed: int = 0) -> list[dict]:
    """``n`` cards drawn without replacement (all of them when ``n`` is larger), the same for the same seed."""
    if n < 1:
        raise QuizFormatError("draw at least one card")
    return random.Random(seed).sample(deck, min(n, len(deck)))


def _card_widget(s: Session, card: dict, numbers, on_change):
    import ipywidgets as w

    box = w.Textarea(value=s.answers.get(card["id"], ""), placeholder="Your answer, as you would say it ...",
                     layout=w.Layout(width="100%", height="90px"))
    box.observe(lambda change: s.write(card["id"], change["new"]), names="value")
    button = w.Button(description="Show model answer", icon="eye", layout=w.Layout(width="auto"))
    shown = w.VBox()

    def reveal(_=None):
        s.reveal(card["id"])
        ticks = []
        for i, point in enumerate(card["rubric"]):
            tick = w.Checkbox(value=i in s.ticked.get(card["id"], ()), description=point, indent=False,
                              layout=w.Layout(width="100%"))
            tick.observe(lambda change, i=i: (s.tick(card["id"], i, change["new"]), on_change()), names="value")
            ticks.append(tick)
        answer = w.HTML(f"<b>Model answer.</b> {inline_html(fill(card['answer'], numbers))}")
        shown.children = [answer, w.HTML("<b>Did your answer cover these?</b>"), *ticks]
        button.disabled = True
        on_change()

    button.on_click(reveal)
    if card["id"] in s.revealed:
        reveal()
    return w.VBox([w.HTML(f"<h4>{inline_html(card['question'])}</h4>"), box, button, shown])


def practice(deck: list[dict], numbers: Mapping | None = None, name: str = "interview"):
    """The mock interview as widgets: per card a text area, a reveal button, the rubric; a score below."""
    import ipywidgets as w

    s = session(name, deck)
    score = w.HTML()

    def update():
        score.value = inline_html(s.summary())

    parts = [_card_widget(s, c, numbers, update) for c in deck]
    update()
    return w.VBox([*parts, score])


def flashcards(deck: list[dict], numbers: Mapping | None = None, seed: int = 0, name: str = "flashcards"):
    """One card at a time, drawn at random from ``deck``: answer it, reveal, grade, next."""
    import ipywidgets as w

    order = draw(deck, len(deck), seed)
    s = session(name, order)
    state = {"at": 0}
    holder, score = w.VBox(), w.HTML()

    def update():
        score.value = inline_html(f"Card {state['at'] + 1} of {len(order)} (from notebook {order[state['at']].get('notebook', '?')[:2]}). "
                            + s.summary())

    def show(_=None):
        holder.children = [_card_widget(s, order[state["at"]], numbers, update)]
        update()

    def step(delta):
        state["at"] = (state["at"] + delta) % len(order)
        show()

    back, forward = w.Button(description="Previous", icon="arrow-left"), w.Button(description="Next card", icon="arrow-right")
    back.on_click(lambda _: step(-1))
    forward.on_click(lambda _: step(1))
    show()
    return w.VBox([holder, w.HBox([back, forward]), score])
