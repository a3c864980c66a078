"""Shared fixtures. Real domains come from the data directory (built once by `prepare`);
tests that write or break caches use a temporary directory of their own."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DATL_QUIET", "1")  # no progress bars in test output


@pytest.fixture(scope="session")
def domains():
    from datl_helpers import data

    return {name: data.load_domain(name) for name in data.OFFLINE_DOMAINS}


@pytest.fixture
def tmp_data_dir(tmp_path, monkeypatch):
    """A fresh, empty data directory, also set as DATL_DATA_DIR."""
    path = tmp_path / "datl-data"
    monkeypatch.setenv("DATL_DATA_DIR", str(path))
    return path
