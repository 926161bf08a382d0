"""The guides in docs/ run as written: every Python block of a guide, in
order, in one namespace (a reader follows them top to bottom)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDES = sorted(p for p in DOCS.glob("*.md") if re.search(r"```python\n", p.read_text()))


@pytest.mark.parametrize("guide", GUIDES, ids=[p.name for p in GUIDES])
def test_guide_python_blocks_run(guide: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), flags=re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{guide.name} block {i}", "exec"), namespace)
