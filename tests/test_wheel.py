"""The release wheel installs everything a host without Rust needs.

scripts/build-wheel builds the wheel (the CLI and the extension from the
test command's target directory, so this is mostly packaging); a fresh
virtual environment, with no cargo or rustc on its PATH, pip-installs it
with its dependencies (at the versions of the test environment, so pip's
cache serves them), and then `anomaly --help`, the README's first command
(`anomaly demo`), `python -m anomaly` and `import anomaly` work there.

About a minute when the CLI is already built (most of it pip installing
numpy, pandas and scikit-learn); longer when the build has to compile.
Skipped, with the reason, only when the build cannot run: no cargo, no
maturin, or not Linux/macOS (the script is bash)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = "anomaly.exe" if os.name == "nt" else "anomaly"


def can_build() -> str | None:
    """Why the build cannot run here, or None."""
    if os.name == "nt":
        return "scripts/build-wheel is a bash script (run it in Git Bash on Windows)"
    if not shutil.which("cargo"):
        return "cargo is not on PATH: the wheel cannot be built here"
    venv_maturin = ROOT / ".venv" / "bin" / "maturin"
    if not (shutil.which("maturin") or venv_maturin.exists()):
        probe = subprocess.run([sys.executable, "-m", "maturin", "--version"], capture_output=True)
        if probe.returncode != 0:
            return "maturin is not installed (pip install 'maturin>=1.7,<2')"
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = can_build()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    proc = subprocess.run([str(ROOT / "scripts" / "build-wheel"), "--out", str(out)], capture_output=True, text=True,
                          timeout=3600)
    assert proc.returncode == 0, proc.stderr[-5000:]
    print(f"scripts/build-wheel: {time.monotonic() - started:.1f} s")
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.parent == out and path.is_file(), proc.stdout
    return path


def test_the_wheel_is_abi3_and_carries_the_command(wheel: Path) -> None:
    version = importlib.metadata.version("anomaly")
    assert re.fullmatch(rf"anomaly-{re.escape(version)}-cp311-abi3-\w+\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        script = z.getinfo(f"anomaly-{version}.data/scripts/{EXE}")
        binary = z.read(script)
    assert any(re.fullmatch(r"anomaly/_anomaly\.(abi3\.so|pyd)", n) for n in names)
    assert "anomaly/__main__.py" in names
    assert stat.S_IMODE(script.external_attr >> 16) & 0o111, "the command must be executable"
    if sys.platform == "linux":
        assert binary.startswith(b"\x7fELF")
        # The wheel's manylinux tag promises a glibc: the command must run with it.
        tag = re.search(r"manylinux_2_(\d+)", wheel.name)
        needs = [int(m) for m in re.findall(rb"GLIBC_2\.(\d+)", binary)]
        if tag and needs:
            assert max(needs) <= int(tag.group(1)), f"the command needs glibc 2.{max(needs)}, the tag says {tag[0]}"
    # No wheel-data folder is left in the checkout for `pip install .` to ship.
    assert not (ROOT / "anomaly._anomaly.data").exists()


def rustless_env(venv: Path) -> dict[str, str]:
    """The environment of a host without Rust: the venv's bin first, and no
    PATH entry that has cargo, rustc or the checkout's own environment."""
    keep = []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or Path(folder).resolve() == (ROOT / ".venv" / "bin").resolve():
            continue
        if any((Path(folder) / tool).exists() for tool in ("cargo", "rustc", "maturin", "anomaly")):
            continue
        keep.append(folder)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CARGO", "RUSTUP", "PYO3_", "ANOMALY_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *keep])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    assert not shutil.which("cargo", path=env["PATH"]) and not shutil.which("rustc", path=env["PATH"])
    return env


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel pip-installed, as on a host without Rust."""
    root = tmp_path_factory.mktemp("host")
    venv = root / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    env = rustless_env(venv)
    # The dependencies at the test environment's versions: pip's cache has them.
    constraints = root / "constraints.txt"
    constraints.write_text("".join(
        f"{d.metadata['Name']}=={d.version}\n" for d in importlib.metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower() != "anomaly"))
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--only-binary", ":all:",
                           "-c", str(constraints), str(wheel)], cwd=root, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"pip install of the wheel and its dependencies failed:\n{proc.stderr[-5000:]}"
    print(f"fresh venv + pip install: {time.monotonic() - started:.1f} s")
    return root, env


def run(args: list[str], host: tuple[Path, dict[str, str]], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    root, env = host
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def test_anomaly_is_the_installed_binary(installed: tuple[Path, dict[str, str]]) -> None:
    root, env = installed
    command = shutil.which("anomaly", path=env["PATH"])
    assert command and Path(command).parent == root / "venv" / "bin"
    if sys.platform == "linux":
        assert Path(command).read_bytes()[:4] == b"\x7fELF"  # the Rust program itself, no Python in front
    proc = run(["anomaly", "--help"], installed)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: anomaly" in proc.stdout and "forecast" in proc.stdout


def test_the_readme_first_command_runs_from_the_wheel(installed: tuple[Path, dict[str, str]]) -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```bash\n(.*?)```", readme, flags=re.S)
    assert first
    args = shlex.split(first.group(1).strip().splitlines()[0])
    assert args[:2] == ["cargo", "run"]  # built from source there; installed here
    command = ["anomaly", *args[args.index("--") + 1:]]
    root, _ = installed
    proc = run([*command, "--db", f"sqlite:{root / 'demo.db'}"], installed)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["results"] == summary["readings"] == 25 * 14 * 288 and summary["anomalies"] > 0
    with sqlite3.connect(root / "demo.db") as c:
        assert c.execute("SELECT COUNT(*) FROM anomalies_detector").fetchone()[0] == 25 * 14 * 288
    assert (root / "models").is_dir()


def test_python_imports_the_installed_package(installed: tuple[Path, dict[str, str]]) -> None:
    root, _ = installed
    proc = run(["python", "-c", "import anomaly; print(anomaly.__version__); print(anomaly.__file__)"], installed)
    assert proc.returncode == 0, proc.stderr
    version, where = proc.stdout.split()
    assert version == importlib.metadata.version("anomaly")
    assert Path(where).is_relative_to(root / "venv")
    proc = run(["python", "-m", "anomaly", "--version"], installed)
    assert proc.returncode == 0 and version in proc.stdout, proc.stderr


def test_python_m_anomaly_explains_a_source_install(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`pip install .` builds the Python package only: `python -m anomaly`
    says where the command comes from."""
    import importlib.util

    # The checkout's file (the test environment may hold an older install).
    spec = importlib.util.spec_from_file_location("anomaly_main", ROOT / "python" / "anomaly" / "__main__.py")
    assert spec and spec.loader
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    monkeypatch.setattr(entry, "find_command", lambda: None)
    assert entry.main(["--help"]) == 127
    message = capsys.readouterr().err
    assert "scripts/build-wheel" in message and "cargo build --release -p anomaly-cli" in message


def test_build_wheel_configures_pyo3_as_the_test_command() -> None:
    """Same PYO3 configuration, so the two builds share their artifacts."""
    def config(script: str) -> list[str]:
        return [line.strip() for line in (ROOT / "scripts" / script).read_text().splitlines()
                if line.strip().startswith(("printf 'implementation=", "export PYO3_CONFIG_FILE=",
                                            "export PYO3_BUILD_EXTENSION_MODULE="))]
    assert len(config("test")) == 3 and config("build-wheel") == config("test")
    assert "/anomaly._anomaly.data/" in (ROOT / ".gitignore").read_text().split()
