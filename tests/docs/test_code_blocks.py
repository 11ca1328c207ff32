"""Every Python code block in README.md, CHANGELOG.md and docs/ runs as written.

The blocks of one page run in order in one namespace (a page reads top to bottom), in a temporary directory. A
block that cannot run here (a GPU, a network, a large download, minutes of work) is preceded by
``<!-- not-run: why -->``; the reason is required. Bash, YAML and text blocks are not executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PYTHON = {"python", "py"}
NOT_RUN = re.compile(r"^<!--\s*not-run:(?P<reason>.*?)-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
README_MAX_LINES = 250


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason given in a not-run comment on the line before, if any

    @property
    def label(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The fenced code blocks of a Markdown file (a fence closes on the same character, at least as long)."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, start = opening["fence"], i
        i += 1
        body = []
        while i < len(lines) and not (lines[i].startswith(fence[0] * len(fence)) and not lines[i].strip(fence[0])):
            body.append(lines[i])
            i += 1
        marker = NOT_RUN.match(lines[start - 1].strip()) if start > 0 else None
        reason = marker["reason"].strip() if marker else None
        blocks.append(Block(path, start + 1, opening["lang"].lower(), "\n".join(body) + "\n", reason))
        i += 1
    return blocks


def not_run_markers(path: Path, text: str | None = None) -> list[int]:
    """1-based lines of every not-run comment in a file, outside code blocks (an example of one is no marker)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    inside = {b.line + k for b in fenced_blocks(path, text) for k in range(b.code.count("\n") + 2)}
    lines = text.splitlines()
    return [n for n, line in enumerate(lines, 1) if line.strip().startswith("<!-- not-run") and n not in inside]


def doc_files() -> list[Path]:
    pages = sorted(p for p in (ROOT / "docs").rglob("*.md") if "results" not in p.relative_to(ROOT / "docs").parts)
    return [README, ROOT / "CHANGELOG.md", *pages]


def python_blocks(path: Path) -> list[Block]:
    return [b for b in fenced_blocks(path) if b.lang in PYTHON]


PAGES_WITH_CODE = [p for p in doc_files() if any(b.not_run is None for b in python_blocks(p))]


@pytest.mark.parametrize("path", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in python_blocks(path):
        if block.not_run is None:
            exec(compile(block.code, block.label, "exec"), namespace)  # noqa: S102
    if path == README:  # the API example's printed shapes are its promise
        assert "torch.Size([2, 5])" in capsys.readouterr().out


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_not_run_blocks_say_why(path):
    blocks = python_blocks(path)
    for block in blocks:
        assert block.not_run != "", f"{block.label}: a not-run comment must give the reason"
    marked = {b.line - 1 for b in blocks if b.not_run is not None}
    stray = [n for n in not_run_markers(path) if n not in marked]
    assert not stray, f"{path.name}: not-run comments on lines {stray} are not right above a python block"


def test_readme_is_short_and_its_links_exist():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES, "README.md grew: move the details to a page under docs/"
    targets = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", text)
    assert targets, "README links to no documentation page"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_the_parser_finds_blocks_and_reasons(tmp_path):
    text = (
        "text\n```python\nx = 1\n```\n"
        "<!-- not-run: needs a GPU -->\n```python\nimport cuda_only\n```\n"
        "<!-- not-run: -->\n```py\ny = 2\n```\n"
        "````markdown\n<!-- not-run: an example -->\n```python\nnested = True\n```\n````\n"
        "```bash\nmake test\n```\n"
    )
    blocks = fenced_blocks(tmp_path / "page.md", text)
    assert [(b.lang, b.not_run) for b in blocks] == [
        ("python", None), ("python", "needs a GPU"), ("py", ""), ("markdown", None), ("bash", None)
    ]  # fmt: skip
    assert blocks[0].code == "x = 1\n" and "nested = True" in blocks[3].code
    assert not_run_markers(tmp_path / "page.md", text) == [5, 9]
