"""Self-check questions: data files beside the package, shown by jupyterquiz, validated here.

Each notebook has a file ``quizzes/NN_name.json`` with two lists:

- ``questions``: multiple-choice (one correct option) or numeric questions in jupyterquiz's own
  format, so the library renders them as they are, in JupyterLab, Colab and on a static page,
  without a kernel. Every option carries a ``feedback`` that says why it is right or wrong.
- ``interview``: interview cards (a question, a model answer of at most about 120 words and a
  rubric of 3-5 points an interviewer listens for), practised with :mod:`datl_helpers.course.interview`.

    from datl_helpers.course import quiz
    quiz.show("03")        # the five or more questions of notebook 03

:func:`validate` is what the tests run on every file; it says what to fix in one sentence.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from pathlib import Path

from datl_helpers.core.errors import QuizFormatError, check_choice

QUIZ_DIR = Path(__file__).resolve().parents[1] / "quizzes"
QUESTION_TYPES = ("multiple_choice", "numeric")
MIN_QUESTIONS = 5
MAX_ANSWER_WORDS = 120
RUBRIC_POINTS = (3, 5)
_FIELD = re.compile(r"\{[^{}]*\}")


def notebooks() -> list[str]:
    """The notebooks that have a quiz file, by name (``01_feature_extraction``, ...)."""
    return sorted(p.stem for p in QUIZ_DIR.glob("[0-9][0-9]_*.json"))


def resolve(notebook: str) -> str:
    """The full name of a notebook given its number (``"03"``) or its full name."""
    names = notebooks()
    matches = [n for n in names if n == notebook or n.split("_", 1)[0] == notebook]
    if len(matches) != 1:
        check_choice("notebook", notebook, [n.split("_", 1)[0] for n in names] + names, QuizFormatError)
    return matches[0]


def load(notebook: str) -> dict:
    """A notebook's quiz file, validated: ``{"notebook", "questions", "interview"}``."""
    name = resolve(notebook)
    path = QUIZ_DIR / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise QuizFormatError(f"{path.name} is not valid JSON ({err}); fix it and run again") from err
    validate(data, where=path.name)
    return data


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise QuizFormatError(message)


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def validate_question(q: dict, where: str) -> None:
    """Raise :class:`QuizFormatError` unless ``q`` is a well-formed question with an explanation per option."""
    _require(_text(q.get("id")), f"{where}: a question has no 'id'")
    where = f"{where}, question {q['id']!r}"
    _require(_text(q.get("question")), f"{where}: the 'question' text is empty")
    kind = q.get("type")
    _require(kind in QUESTION_TYPES, f"{where}: 'type' is {kind!r}; use one of {', '.join(QUESTION_TYPES)}")
    answers = q.get("answers")
    _require(isinstance(answers, list) and len(answers) >= 2, f"{where}: give at least two answers")
    for a in answers:
        _require(_text(a.get("feedback")), f"{where}: every answer needs a 'feedback' that explains it")
    if kind == "multiple_choice":
        texts = [a.get("answer") for a in answers]
        _require(all(_text(t) for t in texts), f"{where}: an option has no 'answer' text")
        _require(len(set(texts)) == len(texts), f"{where}: two options have the same text")
        correct = sum(a.get("correct") is True for a in answers)
        _require(correct == 1, f"{where}: exactly one option must have \"correct\": true (found {correct})")
        _require(all(isinstance(a.get("correct"), bool) for a in answers),
                 f"{where}: every option needs \"correct\": true or false")
    else:
        for a in answers:
            kind_a = a.get("type")
            _require(kind_a in ("value", "range", "default"), f"{where}: numeric answers are value, range or default")
            if kind_a == "value":
                _require(isinstance(a.get("value"), (int, float)), f"{where}: a 'value' answer needs a number")
            if kind_a == "range":
                lo_hi = a.get("range")
                _require(isinstance(lo_hi, list) and len(lo_hi) == 2 and lo_hi[0] < lo_hi[1],
                         f"{where}: a 'range' answer needs [low, high] with low < high")
        _require(sum(a.get("correct") is True for a in answers) == 1,
                 f"{where}: exactly one numeric answer must have \"correct\": true")
        _require(any(a.get("type") == "default" for a in answers),
                 f"{where}: add a 'default' answer whose feedback explains any other number")


def answer_words(template: str) -> int:
    """Words of a model answer, each ``{number}`` field counted as one word."""
    return len(_FIELD.sub("N", template).split())


def validate_card(card: dict, where: str) -> None:
    """Raise :class:`QuizFormatError` unless ``card`` is an interview card: question, short answer, rubric."""
    _require(_text(card.get("id")), f"{where}: an interview card has no 'id'")
    where = f"{where}, card {card['id']!r}"
    _require(_text(card.get("question")), f"{where}: the 'question' text is empty")
    _require(_text(card.get("answer")), f"{where}: the model 'answer' is empty")
    words = answer_words(card["answer"])
    _require(words <= MAX_ANSWER_WORDS,
             f"{where}: the model answer has {words} words; keep it to {MAX_ANSWER_WORDS} (details go to the appendix)")
    rubric = card.get("rubric")
    low, high = RUBRIC_POINTS
    _require(isinstance(rubric, list) and low <= len(rubric) <= high and all(_text(r) for r in rubric),
             f"{where}: give a 'rubric' of {low}-{high} points an interviewer listens for")


def validate(data: dict, where: str = "quiz") -> None:
    """Check a whole quiz file: its questions, its interview cards, and that ids are unique."""
    _require(isinstance(data, dict) and _text(data.get("notebook")), f"{where}: the file needs a 'notebook' name")
    questions, cards = data.get("questions", []), data.get("interview", [])
    _require(isinstance(questions, list) and isinstance(cards, list), f"{where}: 'questions' and 'interview' are lists")
    for q in questions:
        validate_question(q, where)
    for card in cards:
        validate_card(card, where)
    ids = [x["id"] for x in questions + cards]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    _require(not twice, f"{where}: ids used twice: {', '.join(twice)}")


def inline_html(text: str) -> str:
    """Escaped HTML of one paragraph, with Markdown's **bold**, *italics* and `code` kept."""
    import html

    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    escaped = re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", escaped)


def for_jupyterquiz(questions: Iterable[dict]) -> list[dict]:
    """The questions as jupyterquiz expects them: without our own keys (``id``), texts as HTML (it shows
    them as HTML, so `code` and **bold** become tags and a stray ``<`` is escaped)."""
    out = []
    for q in questions:
        q = {k: v for k, v in q.items() if k != "id"}
        q["question"] = inline_html(q["question"])
        q["answers"] = [{k: inline_html(v) if k in ("answer", "feedback") else v for k, v in a.items()}
                        for a in q["answers"]]
        out.append(q)
    return out


def _correct(q: dict) -> str:
    a = next(a for a in q["answers"] if a.get("correct"))
    if q["type"] == "multiple_choice":
        return a["answer"]
    return str(a["value"]) if a.get("type") == "value" else f"between {a['range'][0]} and {a['range'][1]}"


def as_markdown(questions: Iterable[dict]) -> str:
    """The questions as Markdown, each answer folded away with its explanations (no kernel needed)."""
    parts = []
    for i, q in enumerate(questions, 1):
        lines = [f"**{i}. {q['question']}**", ""]
        if q["type"] == "multiple_choice":  # in a fixed shuffled order (the files list the right option first)
            shuffled = random.Random(q.get("id", q["question"])).sample(q["answers"], len(q["answers"]))
            lines += [f"- {a['answer']}" for a in shuffled]
        feedback = [f"- *{a.get('answer', a.get('type'))}*: {a['feedback']}" for a in q["answers"]]
        lines += ["", f"<details><summary>Answer</summary>\n\n{_correct(q)}\n\n" + "\n".join(feedback) + "\n</details>", ""]
        parts.append("\n".join(lines))
    return "\n".join(parts)


def select(notebook: str, ids: Iterable[str] | None = None) -> list[dict]:
    """A notebook's questions, or only those with the given ids (in the order given)."""
    questions = load(notebook)["questions"]
    if ids is None:
        return questions
    by_id = {q["id"]: q for q in questions}
    return [by_id[check_choice("question id", i, by_id, QuizFormatError)] for i in ids]


def show(notebook: str, ids: Iterable[str] | None = None, shuffle_answers: bool = True) -> None:
    """Display a notebook's self-check questions: jupyterquiz when installed, else folded Markdown."""
    from IPython.display import Markdown, display

    questions = select(notebook, ids)
    try:
        from jupyterquiz import display_quiz
    except ImportError:
        display(Markdown(as_markdown(questions)))
        return
    display_quiz(for_jupyterquiz(questions), shuffle_answers=shuffle_answers)
