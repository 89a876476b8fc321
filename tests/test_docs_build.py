"""The documentation site builds with ``mkdocs build --strict`` (no broken link, no missing
reference or figure), and README keeps the commands CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _nav_pages(nav: list) -> list[str]:
    pages = []
    for entry in nav:
        for value in entry.values() if isinstance(entry, dict) else [entry]:
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-5000:]}"
    return out


def test_every_nav_page_is_built(site: Path) -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    pages = _nav_pages(config["nav"])
    assert {"concepts.md", "api.md", "api-ops.md", "what-happens-when.md"} <= set(pages)
    for page in pages:
        html = site / ("index.html" if page == "index.md" else f"{page[:-3]}/index.html")
        assert html.is_file(), f"{page} was not built"


def test_api_reference_is_generated_from_the_docstrings(site: Path) -> None:
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    ops = (site / "api-ops" / "index.html").read_text(encoding="utf-8")
    for name in ("seqclf.train_text_classifier", "seqclf.load", "seqclf.Predictor.predict"):
        assert f'id="{name}"' in api, name
    for name in ("lstm", "gru", "conv1d", "lstm_reference"):
        name = f"seqclf.ops.{name}"
        assert f'id="{name}"' in ops, name
    # A docstring's own words, so the page is the docstring and not just a heading.
    assert "initialised like PyTorch" in ops


def test_concept_figures_are_drawn_and_linked(site: Path) -> None:
    concepts = (site / "concepts" / "index.html").read_text(encoding="utf-8")
    figures = re.findall(r'src="\.\./((?:figures|img)/[\w/]+\.png)"', concepts)
    assert len(figures) >= 7
    for figure in figures:
        assert (site / figure).read_bytes()[:4] == b"\x89PNG", figure
    for name in ("lstm_gates", "vanishing_gradient", "conv_filter", "forecast"):
        assert f"figures/{name}.png" in figures
    assert 'href="../api-ops/#seqclf.ops.lstm"' in concepts  # "the exact function"


def test_readme_is_short_and_keeps_the_ci_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if line.startswith("$PY -m venv"))
    command = command.replace("$PY", "python3.11")
    assert f"```bash\n{command}\n```" in readme
