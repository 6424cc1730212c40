"""The notebooks and the README as a reader sees them, about 900 px wide, in headless Chromium (Debian's `chromium`):
every screen saved as a PNG, and what does not fit, measured in the rendered page: printed lines over 95 characters,
tables, outputs and figures wider than the column.

    python -m bench.render_check [--out results/render] [--pages README.md 4_general_detector.ipynb]

The screens go to <out>/<page>/screen-NN.png (git-ignored); the findings, one row per element that does not fit, to
<out>/findings.csv, and a line per page is printed. Exit status 1 when any page has a finding.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
WIDTH, SCREEN, MAX_CHARS = 900, 1400, 95
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# runs in the page once it has loaded: every element wider than the page's column, and every printed line too long
MEASURE = """<script>
window.addEventListener('load', () => {
  const column = document.querySelector('main, .jp-Notebook, body').getBoundingClientRect();
  const found = [];
  document.querySelectorAll('table, img, pre, .jp-OutputArea-output').forEach(el => {
    const box = el.getBoundingClientRect();
    if (box.width === 0) return;
    const wide = el.scrollWidth > el.clientWidth + 1 || box.right > column.right + 1;
    if (wide) found.push({kind: 'too wide', tag: el.tagName.toLowerCase(), width: Math.round(Math.max(box.width,
      el.scrollWidth)), column: Math.round(column.width), text: (el.innerText || el.alt || el.src || '').slice(0, 80)});
  });
  document.querySelectorAll('.jp-OutputArea-output pre').forEach(el => el.innerText.split('\\n').forEach(line => {
    if (line.length > %d) found.push({kind: 'long line', tag: 'pre', width: line.length, column: %d,
                                      text: line.slice(0, 80)});
  }));
  const report = document.createElement('pre');
  report.id = 'render-report';
  report.textContent = JSON.stringify({height: document.documentElement.scrollHeight, found: found});
  document.body.appendChild(report);
});
</script>""" % (MAX_CHARS, MAX_CHARS)


def page_html(page: Path, folder: Path) -> Path:
    """The page as HTML beside a copy of its images' folder: a notebook through nbconvert's lab template, the README
    as one Markdown cell of a notebook (close to GitHub's rendering of both)."""
    if page.suffix == ".ipynb":
        nb = nbformat.read(page, as_version=4)
    else:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(page.read_text())])
    from nbconvert import HTMLExporter
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    out = folder / f"{page.stem}.html"
    out.write_text(html.replace("</body>", MEASURE + "</body>"))
    return out


def chromium(*args: str, height: int = SCREEN) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: install Debian's package (apt-get install chromium).")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},{height}",
                               "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=300)
    return done.stdout


def check(page: Path, out: Path) -> pd.DataFrame:
    """Screens and findings of one page."""
    shots = out / page.stem
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:  # inside the repository, so results/*.png resolve
        html = page_html(page, Path(tmp))
        (Path(tmp) / "results").symlink_to(REPO / "results")
        dom = chromium("--dump-dom", html.as_uri())
        match = re.search(r'<pre id="render-report">(.*?)</pre>', dom, re.S)
        report = json.loads(match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")) \
            if match else {"height": SCREEN, "found": [{"kind": "no report", "tag": "", "width": 0, "column": 0,
                                                        "text": "the page did not finish loading"}]}
        tall = shots / "page.png"
        chromium(f"--screenshot={tall}", html.as_uri(), height=min(report["height"], 16000))
    from PIL import Image
    image = Image.open(tall)
    for k, top in enumerate(range(0, image.height, SCREEN)):
        image.crop((0, top, image.width, min(top + SCREEN, image.height))).save(shots / f"screen-{k:02d}.png")
    tall.unlink()
    return pd.DataFrame(report["found"], columns=["kind", "tag", "width", "column", "text"]).assign(page=page.name)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "render")
    parser.add_argument("--pages", nargs="*", default=["README.md", *sorted(p.name for p in REPO.glob("[0-9]_*.ipynb"))])
    args = parser.parse_args()
    findings = pd.concat([check(REPO / page, args.out) for page in args.pages], ignore_index=True)
    findings.to_csv(args.out / "findings.csv", index=False)
    for page in args.pages:
        mine = findings[findings["page"] == Path(page).name]
        print(f"{page}: {len(mine)} finding(s)" + "".join(f"\n  {r.kind}: <{r.tag}> {r.width} > {r.column}: "
                                                         f"{r.text!r}" for r in mine.head(8).itertuples()))
    sys.exit(1 if len(findings) else 0)


if __name__ == "__main__":
    main()
