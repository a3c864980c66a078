"""Study time: how long a learner spends on each section of a notebook, measured rather than guessed.

A section starts at a Markdown heading ``## ...``; what comes before the first one is the introduction.
Its study time adds four parts:

- **reading**: the words of its Markdown at 150 a minute, the lines of its code at 10 a minute;
- **running**: the seconds its cells took in a full-mode run on 2 CPU cores (papermill records each
  cell's duration in the executed notebook; :func:`running_seconds` reads them);
- **practice**: 1 minute per self-check question, 3 per interview card, 5 per coding exercise
  (a ``### Exercise`` heading);
- nothing else: widgets to play with are optional.

The measured running seconds are kept in ``notebooks/study_time.json`` (``python -m datl_helpers
study-time --executed DIR`` writes it from full-mode runs), so the front matter of every notebook can
be recomputed from the notebook as it is now; :func:`front_matter` writes it between two markers.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

WORDS_PER_MINUTE = 150
CODE_LINES_PER_MINUTE = 10
MINUTES_PER_QUESTION, MINUTES_PER_CARD, MINUTES_PER_EXERCISE = 1, 3, 5
INTRODUCTION = "Introduction"
BEGIN, END = "<!-- study time -->", "<!-- /study time -->"
CORE, OPTIONAL = ("00", "01", "02", "04", "05"), ("03", "06", "07", "08")
PRACTICE = ("Check yourself", "Practise for an interview", "Exercises")


@dataclass
class Section:
    """A part of a notebook from one ``## `` heading to the next: its title and its cells."""

    title: str
    cells: list = field(default_factory=list)


def sections(nb) -> list[Section]:
    """The notebook's sections in order; the cells before the first ``## `` heading form the introduction."""
    out = [Section(INTRODUCTION)]
    for cell in nb.cells:
        heading = re.search(r"^## (.+)$", cell.source, flags=re.M) if cell.cell_type == "markdown" else None
        if heading:  # a heading inside a cell starts the section at that cell
            out.append(Section(heading.group(1).strip()))
        out[-1].cells.append(cell)
    return [s for s in out if s.cells]


def _prose(text: str) -> str:
    return text.split(BEGIN)[0] + text.split(END)[-1] if BEGIN in text else text


def reading_minutes(cells) -> float:
    """Markdown words at 150 a minute plus non-empty code lines at 10 a minute."""
    words = sum(len(_prose(c.source).split()) for c in cells if c.cell_type == "markdown")
    lines = sum(1 for c in cells if c.cell_type == "code" for line in c.source.splitlines() if line.strip())
    return words / WORDS_PER_MINUTE + lines / CODE_LINES_PER_MINUTE


def running_seconds(cells) -> float:
    """The seconds papermill recorded for these (executed) cells."""
    return sum(float(c.metadata.get("papermill", {}).get("duration") or 0) for c in cells if c.cell_type == "code")


def practice_minutes(cells, notebook: str) -> float:
    """Self-check questions, interview cards and coding exercises shown in these cells."""
    from datl_helpers.course import quiz

    text = "\n".join(c.source for c in cells)
    minutes = MINUTES_PER_EXERCISE * len(re.findall(r"^### Exercise", text, flags=re.M))
    if "quiz.show(" in text:
        minutes += MINUTES_PER_QUESTION * len(quiz.load(notebook)["questions"])
    if "interview.practice(" in text:
        minutes += MINUTES_PER_CARD * len(quiz.load(notebook)["interview"])
    if "interview.flashcards(" in text:
        minutes += MINUTES_PER_CARD * 5  # a few cards, drawn from every notebook
    return minutes


def plan(nb, notebook: str, run_seconds: dict[str, float]) -> list[dict]:
    """Minutes per section: reading, running (from ``run_seconds``, by section title) and practice."""
    rows = []
    for s in sections(nb):
        reading, practice = reading_minutes(s.cells), practice_minutes(s.cells, notebook)
        running = run_seconds.get(s.title, 0.0) / 60
        rows.append({"section": s.title, "reading": reading, "running": running, "practice": practice,
                     "minutes": max(1, math.ceil(reading + running + practice))})
    return rows


def total(rows: list[dict]) -> int:
    """A whole notebook's study time, rounded to 5 minutes."""
    return 5 * max(1, round(sum(r["minutes"] for r in rows) / 5))


def main_and_practice(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The sections of the main path, and those to practise on (self-check, interview, exercises)."""
    return [r for r in rows if r["section"] not in PRACTICE], [r for r in rows if r["section"] in PRACTICE]


def minutes(notebook: Path, notebooks_dir: Path | None = None) -> tuple[int, int | None]:
    """The study minutes a course notebook's front matter states: (main path, practice); practice is
    None for a notebook without practice sections."""
    import nbformat

    notebook = Path(notebook)
    seconds = load_run_seconds(study_file(notebooks_dir or notebook.parent)).get(notebook.stem, {})
    main, practice = main_and_practice(plan(nbformat.read(notebook, as_version=4), notebook.stem, seconds))
    return total(main), (total(practice) if practice else None)


def course_map(notebook: str) -> str:
    """One line: where this notebook sits on the core path and the optional notebooks."""
    key = notebook[:2]
    mark = lambda n: f"**{n}**" if n == key else n  # noqa: E731
    return (f"core {' → '.join(mark(n) for n in CORE)}; optional {', '.join(mark(n) for n in OPTIONAL)}"
            + ("" if key in CORE + OPTIONAL else f" (this one: {key})"))


SHORT = {INTRODUCTION: "intro", "Check yourself": "self-check", "Practise for an interview": "interview",
         "Exercises": "exercises"}


def _short(title: str) -> str:
    number = re.match(r"(\d+) ·", title)
    return f"§{number.group(1)}" if number else SHORT.get(title, title.lower())


def front_matter(rows: list[dict], notebook: str) -> str:
    """The study-time block written into a notebook's first cell (between the markers)."""
    main, practice = main_and_practice(rows)
    by = lambda part: " · ".join(f"{_short(r['section'])} {r['minutes']}" for r in part)  # noqa: E731
    return (f"{BEGIN}\n**Course map:** {course_map(notebook)}.  \n"
            f"**Study time:** about {total(main)} min for the main path ({by(main)})"
            + (f", and {total(practice)} min to practise ({by(practice)})" if practice else "") + ". "
            f"Minutes: reading at {WORDS_PER_MINUTE} words or {CODE_LINES_PER_MINUTE} lines of code a minute, running as measured "
            f"in full mode on 2 CPU cores, {MINUTES_PER_QUESTION} per self-check question, {MINUTES_PER_CARD} per interview card, "
            f"{MINUTES_PER_EXERCISE} per coding exercise.\n{END}")


def with_front_matter(source: str, block: str) -> str:
    """``source`` (a notebook's first cell) with the study-time block replaced, or added after its title line."""
    if BEGIN in source and END in source:
        return source.split(BEGIN)[0] + block + source.split(END, 1)[1]
    title, _, rest = source.partition("\n")
    return f"{title}\n\n{block}\n{rest}"


def load_run_seconds(path: Path) -> dict[str, dict[str, float]]:
    """``{notebook: {section: seconds}}`` from ``study_time.json`` (empty when there is none yet)."""
    path = Path(path)
    return json.loads(path.read_text())["running_seconds"] if path.is_file() else {}


def measured_run_seconds(executed_nb) -> dict[str, float]:
    """Seconds per section of a full-mode run (an executed notebook)."""
    return {s.title: round(running_seconds(s.cells), 1) for s in sections(executed_nb)}


def study_file(notebooks_dir: Path) -> Path:
    return Path(notebooks_dir) / "study_time.json"


def measure(executed_dir: Path, notebooks_dir: Path) -> Path:
    """Read each full-mode executed notebook in ``executed_dir`` and write the seconds per section to
    ``study_time.json`` beside the course notebooks (atomically); refuses smoke runs."""
    import nbformat

    from datl_helpers.core.cache import atomic_write
    from datl_helpers.core.errors import DatlError

    measured = {}
    for path in sorted(Path(executed_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        params = nb.metadata.get("papermill", {}).get("parameters", {})
        if params.get("SMOKE", True):
            raise DatlError(f"{path} was run in smoke mode (or not by papermill); study time needs full-mode runs: "
                            f"python -m datl_helpers run-notebooks --out DIR, then study-time --executed DIR")
        measured[path.stem] = measured_run_seconds(nb)
    if not measured:
        raise DatlError(f"no executed notebooks in {executed_dir}; run python -m datl_helpers run-notebooks --out DIR first")
    target = study_file(notebooks_dir)
    old = load_run_seconds(target)
    payload = {"about": "seconds per section of a full-mode run on 2 CPU cores (python -m datl_helpers study-time)",
               "running_seconds": {**old, **measured}}
    atomic_write(target, lambda tmp: tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n"))
    return target


def expected_first_cells(notebooks_dir: Path) -> dict[Path, str]:
    """For every course notebook: its first cell with the study-time block it should have now."""
    import nbformat

    seconds = load_run_seconds(study_file(notebooks_dir))
    out = {}
    for path in sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        rows = plan(nb, path.stem, seconds.get(path.stem, {}))
        out[path] = with_front_matter(nb.cells[0].source, front_matter(rows, path.stem))
    return out


def stale(notebooks_dir: Path) -> list[str]:
    """Notebooks whose study-time block is missing or no longer matches their content."""
    import nbformat

    return [p.name for p, first in expected_first_cells(notebooks_dir).items()
            if nbformat.read(p, as_version=4).cells[0].source != first]


def write_front_matter(notebooks_dir: Path) -> list[str]:
    """Rewrite the study-time block of every notebook that is stale; returns their names."""
    import nbformat

    changed = []
    for path, first in expected_first_cells(notebooks_dir).items():
        nb = nbformat.read(path, as_version=4)
        if nb.cells[0].source != first:
            nb.cells[0].source = first
            nbformat.write(nb, path)
            changed.append(path.name)
    return changed
