"""Each notebook runs top to bottom under the smoke profile (tiny subsets, a few steps)."""
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in REPO.glob("[0-9]_*.ipynb"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_under_smoke_profile(name, real_data, monkeypatch):
    monkeypatch.setenv("VF_PROFILE", "smoke")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # notebook 3 asks the hub for USB; offline, it answers at once
    nb = nbformat.read(REPO / name, as_version=4)
    NotebookClient(nb, timeout=900, resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "every notebook shows at least one figure"

