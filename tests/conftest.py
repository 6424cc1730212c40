import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def real_data(monkeypatch):
    """The real raw files in ../shared/data; skipped where they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    monkeypatch.setenv("VF_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty folder laid out like ../shared/data, set as VF_DATA_DIR."""
    monkeypatch.setenv("VF_DATA_DIR", str(tmp_path))
    return tmp_path
