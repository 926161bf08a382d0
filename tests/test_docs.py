"""The guides in docs/ run as written: every `python` and `bash` block of a
guide, in order, in one empty working folder, the Python blocks in one
namespace (a reader follows them top to bottom). `text` blocks are not run.

Shell blocks run with `bash -euo pipefail`, the built `anomaly` binary and
the test environment's Python first on PATH; a server's example port (8080)
becomes a free one, so a busy port cannot fail the test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_credit_service import free_port

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", flags=re.S | re.M)
RUN = {"python", "bash"}
GUIDES = sorted(p for p in DOCS.glob("*.md") if any(lang in RUN for lang, _ in FENCE.findall(p.read_text())))


def test_the_user_guide_covers_what_users_do() -> None:
    headings = re.findall(r"^## (.+)$", (DOCS / "guide.md").read_text(), flags=re.M)
    for topic in ["Getting started", "Electricity consumption rules", "Isolation forest", "Forecasting intervals",
                  "Credit scoring", "The command line", "SQL jobs and the worker", "Serving", "Scaling out"]:
        assert topic in headings


@pytest.mark.parametrize("guide", GUIDES, ids=[p.name for p in GUIDES])
def test_guide_blocks_run(guide: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: str) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = [(lang, code) for lang, code in FENCE.findall(guide.read_text()) if lang in RUN]
    assert blocks
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(cli).parent), str(Path(sys.executable).parent), env["PATH"]])
    port = str(free_port())
    namespace: dict[str, object] = {}
    for i, (lang, code) in enumerate(blocks):
        where = f"{guide.name} block {i} ({lang})"
        if lang == "python":
            exec(compile(code, where, "exec"), namespace)
            continue
        code = code.replace("8080", port)
        # A block that fails before stopping its server must not leave it running.
        script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + code
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{where} exited {proc.returncode}:\n{code}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
