"""Every number the README and docs/ put in a results table is found in the results file the table cites."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"[−+-]?\d+\.\d+")
LINK = re.compile(r"\]\((?:\.\./)?(results/[^)#\s]+)\)")  # from the README, or ../results/ from docs/


def tables_with_sources(text: str):
    """(table lines, cited results files) for each markdown table; a table cites the results files linked in it
    and in the paragraph right above it."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    found = []
    for i, block in enumerate(blocks):
        table = [line for line in block if line.lstrip().startswith("|")]
        if len(table) < 3:
            continue
        above = blocks[i - 1] if i else []
        files = LINK.findall("\n".join(block + [line for line in above if not line.lstrip().startswith("|")]))
        found.append((table, files))
    return found


def values(text: str) -> list[float]:
    return [float(v.replace("−", "-")) for v in NUMBER.findall(text)]


# the README and the pages moved out of it (docs/engineering.md's benchmark tables cite their files in the prose)
@pytest.mark.parametrize("page", ["README.md", "docs/history.md", "docs/reference.md", "docs/detector_history.md"])
def test_every_number_in_a_results_table_is_in_the_file_it_cites(page):
    readme = (REPO / page).read_text()
    checked = 0
    for table, files in tables_with_sources(readme):
        cells = [cell for line in table[2:] for cell in line.split("|")[2:]]  # data rows, past the label column
        numbers = [v for cell in cells for v in NUMBER.findall(cell)]
        if not numbers or table[0].startswith("| target |"):  # targets are set, not measured
            continue
        assert files, f"a table of {page} with numbers cites no results file:\n{table[0]}"
        for name in files:
            assert (REPO / name).exists(), f"{page} cites {name}, which does not exist"
        available = [v for name in files for v in values((REPO / name).read_text())]
        for number in numbers:
            decimals = len(number.split(".")[1])
            target = float(number.replace("−", "-"))
            assert any(abs(v - target) <= 0.5 * 10 ** -decimals + 1e-9 for v in available), \
                f"{number} (table {table[0][:60]!r}) is in none of {files}"
            checked += 1
    assert checked > 0 or page.startswith("docs/"), "the README has no results table"
