"""Self-check questions, predict-then-run and the mock interview: the data validates, a malformed
question is refused with what to fix, the logic works on made-up numbers, and the widgets keep what a
learner typed — all without a kernel."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

from datl_helpers import interview, predict, quiz
from datl_helpers.core.errors import QuizFormatError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MC = {"id": "x-1", "question": "Why?", "type": "multiple_choice", "answers": [
    {"answer": "because", "correct": True, "feedback": "Right: because."},
    {"answer": "no reason", "correct": False, "feedback": "There is one: because."}]}
CARD = {"id": "x-card", "question": "What is transfer learning?", "answer": "Reusing what a model learnt; here {probe:pct}.",
        "rubric": ["reuse", "few labels", "a number"]}


# --- the data -------------------------------------------------------------------------------------------------------

def test_every_notebook_has_a_quiz_file():
    assert quiz.notebooks() == NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_quiz_file_validates_and_is_big_enough(notebook):
    data = quiz.load(notebook)
    assert data["notebook"] == notebook
    assert len(data["questions"]) >= quiz.MIN_QUESTIONS
    assert data["interview"], "every notebook has interview cards to practise"
    for q in data["questions"]:
        assert q["id"].startswith(notebook[:2] + "-")
        if q["type"] == "multiple_choice":
            assert 3 <= len(q["answers"]) <= 5
            assert sum(a["correct"] for a in q["answers"]) == 1


def test_ids_are_unique_across_the_course():
    ids = [x["id"] for n in NOTEBOOKS for x in quiz.load(n)["questions"] + quiz.load(n)["interview"]]
    assert len(ids) == len(set(ids))


def test_user_facing_text_never_speaks_of_our_tracker():
    text = " ".join((ROOT / "datl_helpers" / "quizzes" / f"{n}.json").read_text() for n in NOTEBOOKS)
    assert not re.search(r"\b(issue|goal|session|TODO)\b", text, flags=re.I)


def test_notebook_05_answers_cite_only_numbers_the_summary_has():
    from datl_helpers import facts as facts_module
    from datl_helpers import summary

    facts = facts_module.collect(summary.load_results(ROOT / "nonexistent", None), 10)
    known = set(facts)
    for card in quiz.load("05")["interview"]:
        assert set(interview.fields(card["answer"])) <= known, card["id"]
        filled = interview.fill(card["answer"], facts)
        assert "{" not in filled and len(filled.split()) <= quiz.MAX_ANSWER_WORDS + 15, card["id"]


# --- a malformed question is refused, saying what to fix --------------------------------------------------------------

def _broken(change) -> dict:
    q = copy.deepcopy(MC)
    change(q)
    return {"notebook": "x", "questions": [q], "interview": []}


@pytest.mark.parametrize("change, message", [
    (lambda q: q["answers"][1].update(correct=True), "exactly one option"),
    (lambda q: q["answers"][0].update(correct=False), "exactly one option"),
    (lambda q: q["answers"][1].update(feedback=""), "feedback"),
    (lambda q: q["answers"][1].update(answer="because"), "same text"),
    (lambda q: q.update(type="essay"), "'type'"),
    (lambda q: q.update(answers=q["answers"][:1]), "at least two"),
    (lambda q: q.pop("id"), "no 'id'"),
])
def test_malformed_question_is_refused(change, message):
    with pytest.raises(QuizFormatError, match=message):
        quiz.validate(_broken(change))


def test_numeric_question_needs_a_default_explanation():
    q = {"id": "x-n", "question": "ln 2?", "type": "numeric", "precision": 2, "answers": [
        {"type": "value", "value": 0.69, "correct": True, "feedback": "Right."},
        {"type": "range", "range": [0.9, 1.1], "correct": False, "feedback": "That is 1."}]}
    with pytest.raises(QuizFormatError, match="default"):
        quiz.validate({"notebook": "x", "questions": [q]})
    q["answers"].append({"type": "default", "feedback": "The loss of a coin flip is ln 2."})
    quiz.validate({"notebook": "x", "questions": [q]})


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(answer="word " * 121), "121 words"),
    (lambda c: c.update(rubric=["one", "two"]), "rubric"),
    (lambda c: c.update(rubric=["a", "b", "c", "d", "e", "f"]), "rubric"),
])
def test_malformed_card_is_refused(change, message):
    card = copy.deepcopy(CARD)
    change(card)
    with pytest.raises(QuizFormatError, match=message):
        quiz.validate({"notebook": "x", "questions": [], "interview": [card]})


def test_duplicate_ids_and_unknown_notebook_are_refused():
    with pytest.raises(QuizFormatError, match="twice"):
        quiz.validate({"notebook": "x", "questions": [MC, MC]})
    with pytest.raises(QuizFormatError, match="choose from"):
        quiz.load("99")


def test_markdown_fallback_folds_the_answer_and_every_explanation():
    text = quiz.as_markdown([MC])
    assert "**1. Why?**" in text and "<details>" in text
    assert text.index("<details>") < text.index("Right: because.") and "There is one" in text


def test_for_jupyterquiz_keeps_its_format_and_show_runs_without_a_kernel(capsys):
    q = quiz.for_jupyterquiz([MC])[0]
    assert "id" not in q and [a["correct"] for a in q["answers"]] == [True, False]
    html = quiz.for_jupyterquiz([dict(MC, question="Is `x` < **y**?")])[0]["question"]
    assert html == "Is <code>x</code> &lt; <b>y</b>?"
    quiz.show("03")  # jupyterquiz (or the Markdown fallback) displays; without a kernel it prints a repr
    assert capsys.readouterr().out


# --- predict, then run -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pid, numbers, expected", [
    ("01-best-with-ten-labels", {"scratch": 64.0, "linear-probe": 81.8, "finetune": 88.3}, "finetune"),
    ("01-best-with-ten-labels", {"scratch": 90.0, "linear-probe": 81.8, "finetune": 88.3}, "scratch"),
    ("02-too-high-rate", {"too-high LR": 75.2, "layer-wise LRs": 88.4}, "layer-wise LRs"),
    ("02-too-high-rate", {"too-high LR": 88.9, "layer-wise LRs": 88.4}, "tie"),
    ("03-who-gains", {"scratch": 21.3, "finetune": 0.4}, "scratch"),
    ("03-who-gains", {"scratch": 0.2, "finetune": 0.8}, "tie"),
    ("04-dann-beats-source-only", {"dann": 70.0, "source-only": 65.0}, "gain"),
    ("04-dann-beats-source-only", {"dann": 64.0, "source-only": 65.0}, "tie"),
    ("04-dann-beats-source-only", {"dann": 60.0, "source-only": 65.0}, "loss"),
    ("06-pgd-keeps", {"clean": 88.0, "attacked": 2.0}, "none"),
    ("06-pgd-keeps", {"clean": 88.3, "attacked": 22.1}, "some"),
    ("06-pgd-keeps", {"clean": 88.0, "attacked": 60.0}, "most"),
    ("07-dann-on-spam", {"dann": 80.1, "source-only": 80.7}, "tie"),
    ("08-what-fixes-label-shift", {"dann": 61.0, "label-shift": 70.5}, "label-shift"),
    ("08-what-fixes-label-shift", {"dann": 66.0, "label-shift": 65.5}, "tie"),
])
def test_prediction_outcome_is_read_off_the_numbers(pid, numbers, expected):
    assert predict.outcome(pid, numbers) == expected
    assert expected in predict.get(pid).options


def test_judge_compares_the_guess_with_the_run():
    numbers = {"scratch": 21.3, "finetune": 0.4}
    right = predict.judge("03-who-gains", numbers, "scratch", unit=" points")
    wrong = predict.judge("03-who-gains", numbers, "finetune", unit=" points")
    none = predict.judge("03-who-gains", numbers, None)
    assert "✅" in right and "scratch 21.3 points" in right
    assert "❌" in wrong and "fine-tuning gains more" in wrong
    assert "did not commit" in none
    for text in (right, wrong, none):  # the lesson is given whatever came true
        assert predict.get("03-who-gains").why in text


def test_judge_refuses_missing_numbers_and_unknown_guesses():
    with pytest.raises(QuizFormatError, match="missing: finetune"):
        predict.outcome("03-who-gains", {"scratch": 1.0})
    with pytest.raises(QuizFormatError, match="choose from"):
        predict.judge("03-who-gains", {"scratch": 1.0, "finetune": 0.0}, "maybe")
    with pytest.raises(QuizFormatError, match="choose from"):
        predict.get("no-such-question")


def test_ask_remembers_the_guess_when_the_cell_runs_again():
    predict.GUESSES.pop("03-who-gains", None)
    box = predict.ask("03-who-gains")
    buttons = box.children[1]
    assert buttons.value is None  # nothing chosen for the learner
    buttons.value = "finetune"
    assert predict.GUESSES["03-who-gains"] == "finetune"
    assert predict.ask("03-who-gains").children[1].value == "finetune"


def test_every_prediction_is_asked_and_revealed_in_its_notebook():
    sources = {n[:2]: " ".join(c.source for c in nbformat.read(ROOT / "notebooks" / f"{n}.ipynb", as_version=4).cells)
               for n in NOTEBOOKS}
    for pid in predict.PREDICTIONS:
        text = sources[pid[:2]]
        ask, reveal = text.find(f'predict.ask("{pid}")'), text.find(f'predict.reveal("{pid}"')
        assert 0 <= ask < reveal, f"{pid}: ask before the run, reveal after it"


# --- the mock interview ----------------------------------------------------------------------------------------------

def test_fill_formats_numbers_and_says_what_is_missing():
    assert interview.fill("{probe:pct} and {gain:pts}, {labels}", {"probe": 81.83, "gain": 3.21, "labels": 10}) == \
        "81.8 % and +3.2 points, 10"
    assert interview.fill("{probe:pct}", {"probe": None}) == "n/a"
    with pytest.raises(QuizFormatError, match="no number called nope"):
        interview.fill("{nope:pct}", {"probe": 1.0})
    with pytest.raises(QuizFormatError, match="pass the numbers"):
        interview.fill("{probe:pct}")
    assert interview.fill("no numbers here") == "no numbers here"


def test_session_scores_only_revealed_cards_and_grades_after_reveal():
    deck = [dict(CARD, id="a"), dict(CARD, id="b")]
    s = interview.Session(deck)
    assert "No answer revealed" in s.summary()
    s.write("a", "we reuse a pretrained model")
    with pytest.raises(QuizFormatError, match="reveal the model answer"):
        s.tick("a", 0)
    s.reveal("a")
    s.tick("a", 0)
    s.tick("a", 2)
    assert s.score() == (2, 3)
    s.tick("a", 2, on=False)
    assert s.score() == (1, 3)
    assert "1 of 3 rubric points on 1 of 2 questions" in s.summary() and "another pass" in s.summary()
    with pytest.raises(QuizFormatError, match="does not exist"):
        s.tick("a", 3)


def test_practice_widget_keeps_typed_answers_and_scores_the_rubric():
    deck = [dict(CARD, id="w1"), dict(CARD, id="w2")]
    interview.SESSIONS.pop("test", None)
    box = interview.practice(deck, {"probe": 81.8}, name="test")
    first = box.children[0]
    text, button, shown = first.children[1], first.children[2], first.children[3]
    text.value = "transfer reuses a model"
    button.click()
    answer, ticks = shown.children[0], shown.children[2:]
    assert "81.8 %" in answer.value and len(ticks) == 3
    ticks[0].value = True
    assert "1 of 3 rubric points" in box.children[-1].value
    again = interview.practice(deck, {"probe": 81.8}, name="test")  # the cell is run again
    assert again.children[0].children[1].value == "transfer reuses a model"
    assert again.children[0].children[3].children[2].value is True


def test_flashcards_draw_from_every_notebook_and_step_through():
    deck = interview.cards()
    assert {c["notebook"] for c in deck} == set(NOTEBOOKS)
    assert interview.draw(deck, 5, seed=1) == interview.draw(deck, 5, seed=1)
    with pytest.raises(QuizFormatError):
        interview.draw(deck, 0)
    box = interview.flashcards(deck[:3], {}, seed=0, name="test-cards")
    first = box.children[0].children[0].children[0].value
    box.children[1].children[1].click()  # next card
    assert box.children[0].children[0].children[0].value != first


@pytest.mark.parametrize("notebook", [n for n in NOTEBOOKS if not n.startswith("05")])
def test_each_notebook_shows_its_quiz_and_interview_practice(notebook):
    nb = nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    key = notebook[:2]
    assert f'quiz.show("{key}")' in text and f'interview.cards(["{key}"])' in text
    assert "## Check your understanding" not in text and "## Interview questions this notebook answers" not in text


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_the_right_option_is_not_given_away_by_its_length(notebook):
    """A learner should not find the right answer by picking the longest option."""
    mc = [q for q in quiz.load(notebook)["questions"] if q["type"] == "multiple_choice"]
    longest = 0
    for q in mc:
        right = next(len(a["answer"]) for a in q["answers"] if a["correct"])
        wrong = max(len(a["answer"]) for a in q["answers"] if not a["correct"])
        assert right <= 1.5 * wrong, f"{q['id']}: the right option is {right / wrong:.1f}x the longest wrong one"
        longest += right > wrong
    assert longest <= -(-len(mc) // 3), f"the right option is the longest in {longest} of {len(mc)} questions"


def test_the_markdown_fallback_does_not_always_put_the_right_option_first():
    firsts = []
    for n in NOTEBOOKS:
        for q in quiz.load(n)["questions"]:
            if q["type"] == "multiple_choice":
                listed = [line[2:] for line in quiz.as_markdown([q]).splitlines() if line.startswith("- ")][:len(q["answers"])]
                firsts.append(listed[0] == next(a["answer"] for a in q["answers"] if a["correct"]))
    assert sum(firsts) < len(firsts) / 2
