"""The README's code runs as written: its Python blocks and its first command."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_exactly_two_commands() -> None:
    lang, first = BLOCKS[0]
    commands = [line for line in first.strip().splitlines() if line.strip()]
    assert lang == "bash" and len(commands) == 2
    assert commands[1] == "./scripts/test"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def test_readme_first_command_runs_the_demo(tmp_path: Path) -> None:
    import json
    import sqlite3

    first = [line for line in BLOCKS[0][1].strip().splitlines() if line.strip()][0]
    args = shlex.split(first)
    assert args[-1] == "demo"
    # The database and models go to a temporary folder instead of the checkout.
    args += ["--db", f"sqlite:{tmp_path / 'anomaly.db'}", "--models", str(tmp_path / "models")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYO3_")}
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["results"] == summary["readings"] == 25 * 14 * 288 and summary["anomalies"] > 0
    with sqlite3.connect(tmp_path / "anomaly.db") as c:
        assert c.execute("SELECT COUNT(*) FROM anomalies_detector").fetchone()[0] == 25 * 14 * 288
    assert (tmp_path / "models").is_dir()


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_readme_python_blocks(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    exec(compile(BLOCKS[index][1], f"README.md block {index}", "exec"), {})


def test_examples_run() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "consumption_demo.py")], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Suspicious clients:" in proc.stdout and "C00005" in proc.stdout
