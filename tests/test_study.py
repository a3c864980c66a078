"""Study time per section: counted from the notebook's content and a measured full-mode run, written
into every notebook's first cell, and kept up to date (the test fails when a notebook changed)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from datl_helpers import study
from datl_helpers.core.errors import DatlError

ROOT = Path(__file__).resolve().parents[1]


def _nb(*cells):
    return new_notebook(cells=list(cells))


def _timed(source: str, seconds: float):
    cell = new_code_cell(source)
    cell.metadata["papermill"] = {"duration": seconds}
    return cell


def test_sections_start_at_every_second_level_heading():
    nb = _nb(new_markdown_cell("# 09 · Title\nintro words"), new_code_cell("x = 1"),
             new_markdown_cell("## 1 · First\ntext"), new_code_cell("y = 2"),
             new_markdown_cell("a closing line\n\n## 2 · Second"), new_markdown_cell("### Exercise 2.A: not a section"))
    titles = [s.title for s in study.sections(nb)]
    assert titles == [study.INTRODUCTION, "1 · First", "2 · Second"]
    assert len(study.sections(nb)[2].cells) == 2


def test_reading_running_and_practice_are_counted():
    cells = [new_markdown_cell(" ".join(["word"] * 300)), _timed("a = 1\n\nb = 2\n", 90.0), _timed("c = 3", 30.0)]
    assert study.reading_minutes(cells) == pytest.approx(300 / 150 + 3 / 10)
    assert study.running_seconds(cells) == 120.0
    practice = [new_markdown_cell("### Exercise 1.A: x\n\n### Exercise 1.B: y"), new_code_cell('quiz.show("03")'),
                new_code_cell('interview.practice(interview.cards(["03"]), name="03")')]
    from datl_helpers import quiz

    data = quiz.load("03")
    assert study.practice_minutes(practice, "03_augmentation") == (
        2 * study.MINUTES_PER_EXERCISE + len(data["questions"]) * study.MINUTES_PER_QUESTION
        + len(data["interview"]) * study.MINUTES_PER_CARD)


def test_front_matter_is_inserted_once_and_replaced_in_place():
    rows = [{"section": study.INTRODUCTION, "minutes": 4}, {"section": "1 · Recipe", "minutes": 12},
            {"section": "Check yourself", "minutes": 11}]
    block = study.front_matter(rows, "01_feature_extraction")
    assert "**01**" in block and "main path (intro 4 · §1 12)" in block and "practise (self-check 11)" in block
    first = "# 01 · Title\n\nSome words."
    once = study.with_front_matter(first, block)
    assert once.startswith("# 01 · Title\n\n" + study.BEGIN) and once.endswith("Some words.")
    assert study.with_front_matter(once, block) == once
    other = study.with_front_matter(once, block.replace("12", "13"))
    assert other.count(study.BEGIN) == 1 and "§1 13" in other
    # the block itself is not read as prose, so writing it does not change the reading time
    assert study.reading_minutes([new_markdown_cell(once)]) == study.reading_minutes([new_markdown_cell(first)])


def test_measure_refuses_smoke_runs_and_writes_seconds_per_section(tmp_path):
    executed, notebooks = tmp_path / "executed", tmp_path / "notebooks"
    executed.mkdir(), notebooks.mkdir()
    nb = _nb(new_markdown_cell("# 03 · T"), _timed("x = 1", 2.0), new_markdown_cell("## 1 · A"), _timed("y = 2", 60.0))
    nb.metadata["papermill"] = {"parameters": {"SMOKE": True}}
    nbformat.write(nb, executed / "03_augmentation.ipynb")
    with pytest.raises(DatlError, match="smoke mode"):
        study.measure(executed, notebooks)
    assert not study.study_file(notebooks).exists()
    nb.metadata["papermill"]["parameters"]["SMOKE"] = False
    nbformat.write(nb, executed / "03_augmentation.ipynb")
    path = study.measure(executed, notebooks)
    assert study.load_run_seconds(path) == {"03_augmentation": {study.INTRODUCTION: 2.0, "1 · A": 60.0}}
    with pytest.raises(DatlError, match="no executed notebooks"):
        study.measure(tmp_path, notebooks)


def test_every_notebook_states_its_map_and_study_time_and_it_is_up_to_date():
    notebooks = ROOT / "notebooks"
    assert study.stale(notebooks) == [], "rewrite with: python -m datl_helpers study-time"
    seconds = study.load_run_seconds(study.study_file(notebooks))
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0].source
        assert "**Course map:**" in first and "**Study time:** about" in first, path.name
        assert "**Prerequisites:**" in first, path.name
        assert path.stem in seconds, f"{path.name}: no measured full-mode run (study-time --executed DIR)"


def test_readme_course_map_states_each_notebooks_measured_study_time():
    import re

    notebooks = ROOT / "notebooks"
    readme = (ROOT / "README.md").read_text()
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        main, practice = study.minutes(path, notebooks)
        stated = f"{main} + {practice} min" if practice else f"{main} min"
        row = re.search(rf"^\| \[{path.stem[:2]} .*$", readme, flags=re.M).group(0)
        assert row.endswith(f"| {stated} |"), f"README's row for {path.stem} should say {stated}: {row[-40:]}"
