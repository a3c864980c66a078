from __future__ import annotations

import json
import subprocess
import sys

from datl_helpers.__main__ import main


def test_domains_lists_offline_domains_with_sizes(tmp_path, capsys):
    out = tmp_path / "domains.json"
    assert main(["domains", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for name, size in (("syn", "40000"), ("mnist", "4000"), ("mnistm", "4000"), ("digits", "1437")):
        assert name in printed and size in printed
    rows = {r["name"]: r for r in json.loads(out.read_text())["domains"]}
    assert rows["digits"]["test"] == 360 and rows["svhn"]["kind"] == "online"


def test_prepare_builds_into_data_dir(tmp_path, capsys):
    out = tmp_path / "prep.json"
    assert main(["--data-dir", str(tmp_path / "d"), "prepare", "--domains", "digits", "--json", str(out)]) == 0
    assert (tmp_path / "d" / "digits.npz").exists()
    assert json.loads(out.read_text())["domains"][0]["train"] == 1437


def test_user_errors_are_one_line_without_traceback(tmp_path):
    for args in (["prepare", "--domains", "mnsit"], ["prepare", "--domains", "usps"]):
        run = subprocess.run(
            [sys.executable, "-m", "datl_helpers", "--data-dir", str(tmp_path), *args],
            capture_output=True, text=True, timeout=120,
        )
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("error: ")
        assert "syn" in run.stderr  # the offline names are offered
