"""Every code block of README.md and docs/*.md runs as written.

Per Markdown file, in a fresh temporary working directory, in the order they appear:

* each ```python block runs, all blocks of a file sharing one namespace (a block may use what
  an earlier block of the same file defined, never anything else);
* each ```bash block preceded by ``<!-- run -->`` runs in bash (with this Python's scripts, e.g.
  ``seqclf``, on the PATH); other bash blocks are shown, not run;
* a python block preceded by ``<!-- no-run: REASON -->`` is skipped; the reason must be given.

The working directory holds a small ``reviews.csv`` and ``test.csv`` (columns text,label) —
"your CSV" of the quick start — and nothing else.
"""

from __future__ import annotations

import csv
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```\s*$", re.M | re.S
)
MARKER = re.compile(r"<!--\s*(?P<kind>run|no-run)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")


@dataclass
class Block:
    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    marker: str | None  # "run", "no-run" or None
    reason: str | None

    @property
    def runs(self) -> bool:
        if self.lang == "python":
            return self.marker != "no-run"
        return self.lang == "bash" and self.marker == "run"


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, each with the marker on the line before it."""
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = MARKER.match(before)
        body = "\n".join(
            row[len(match["indent"]) :] for row in match["body"].split("\n")
        )  # a fence indented in a list item
        blocks.append(
            Block(
                match["lang"],
                body,
                line,
                marker["kind"] if marker else None,
                (marker["reason"] or "").strip() or None if marker else None,
            )
        )
    return blocks


def write_fixtures(directory: Path) -> None:
    """``reviews.csv`` (60 rows) and ``test.csv`` (20 rows): short reviews, pos and neg."""
    rng = random.Random(0)
    good = "wonderful superb moving delightful brilliant charming".split()
    bad = "dull awful boring tedious clumsy dreadful".split()
    for name, count in (("reviews.csv", 60), ("test.csv", 20)):
        with open(directory / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for i in range(count):
                label = ("pos", "neg")[i % 2]
                words = good if label == "pos" else bad
                first, second, third = (rng.choice(words) for _ in range(3))
                text = f"a {first} film with {second} acting, truly {third}"
                writer.writerow([text, label])


def test_parser_reads_markers_and_languages() -> None:
    text = (
        "intro\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a GPU -->\n```python\ngpu()\n```\n"
        "<!-- run -->\n```bash\necho hi\n```\n\n```bash\nnot run\n```\n\n"
        "- item\n\n    ```python\n    y = 2\n    ```\n<!-- no-run -->\n```python\nz\n```\n"
    )
    blocks = code_blocks(text)
    assert [(b.lang, b.runs) for b in blocks] == [
        ("python", True),
        ("python", False),
        ("bash", True),
        ("bash", False),
        ("python", True),
        ("python", False),
    ]
    assert blocks[1].reason == "needs a GPU" and blocks[0].line == 3
    assert blocks[4].code == "y = 2\n" and blocks[5].reason is None


def test_every_page_has_its_code_checked() -> None:
    """README's quick start runs; a skipped block always says why."""
    readme = [b for b in code_blocks((ROOT / "README.md").read_text()) if b.runs]
    assert any("train_text_classifier" in b.code for b in readme)
    for page in PAGES:
        for block in code_blocks(page.read_text(encoding="utf-8")):
            if block.marker == "no-run":
                assert block.reason, f"{page.name}:{block.line}: no-run needs a reason"
            assert block.lang, f"{page.name}:{block.line}: a code block needs a language"


def _runnable(page: Path) -> list[Block]:
    return [b for b in code_blocks(page.read_text(encoding="utf-8")) if b.runs]


@pytest.mark.parametrize("page", [p for p in PAGES if _runnable(p)], ids=lambda p: p.name)
def test_code_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _runnable(page)
    write_fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for block in blocks:
        where = f"{page.relative_to(ROOT)}:{block.line}"
        if block.lang == "python":
            try:
                exec(compile(block.code, where, "exec"), namespace)  # noqa: S102
            except Exception as error:
                pytest.fail(f"{where}: the python block fails: {type(error).__name__}: {error}")
        else:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{where}: the bash block fails:\n{done.stderr[-3000:]}"
