"""deploy/ works as shipped: the systemd units verify (systemd-analyze when
installed, and the keys the services rely on in any case), every `anomaly
...` command line in deploy/ parses with the real binary, and the units'
and the image's own commands run: the worker scores a database and exits,
serve answers /health (the image's healthcheck, run as written) and exits 0
on SIGTERM."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_credit_service import free_port

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = ["anomaly-watch.service", "anomaly-serve.service"]
SHELL_OPERATORS = {"&&", "||", "|", ";", "&", ">", ">>", "2>", "2>&1", "<"}


def env_example() -> dict[str, str]:
    """deploy/anomaly.env.example as systemd reads it: KEY=value lines."""
    values = {}
    for line in (DEPLOY / "anomaly.env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text())
    return parser


def exec_start(name: str, env: dict[str, str]) -> list[str]:
    """The unit's ExecStart as systemd runs it: `${X}` is one word, `$X` is
    split on whitespace."""
    words: list[str] = []
    for token in shlex.split(unit(name)["Service"]["ExecStart"]):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", token)
        if whole:
            words += env[whole.group(1)].split()
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env[m.group(1)], token))
    return words


def subcommands(cli: str) -> set[str]:
    text = subprocess.run([cli, "--help"], capture_output=True, text=True, check=True).stdout
    section = text.split("Commands:", 1)[1].split("Options:", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\s{2}([a-z][a-z-]*)\s", section, flags=re.M)}


def command_lines(cli: str) -> dict[str, list[list[str]]]:
    """Every `anomaly ...` command line in deploy/, by file: after the
    binary (`anomaly`, `.../bin/anomaly`, `...\\anomaly.exe`, or the image
    named `anomaly` in `docker run`) comes a subcommand or --version, up to a
    shell operator; NSSM's `AppParameters` are the arguments of the program
    installed before. Variables are those of the env example."""
    env = env_example()
    known = subcommands(cli) | {"--version", "--help"}
    found: dict[str, list[list[str]]] = {}
    for path in sorted(DEPLOY.iterdir()):
        text = re.sub(r"\\\n\s*", " ", path.read_text())  # continuation lines
        text = re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), m.group(0)), text)
        text = re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), m.group(0)), text)
        lines = found.setdefault(path.name, [])
        for line in text.splitlines():
            lexer = shlex.shlex(line.lstrip("# "), posix=True)
            lexer.whitespace_split = True
            lexer.escape = ""  # Windows paths
            try:
                tokens = list(lexer)
            except ValueError:  # prose with an apostrophe
                continue
            if "AppParameters" in tokens:
                lines.append(tokens[tokens.index("AppParameters") + 1 :])
                continue
            for i, token in enumerate(tokens[:-1]):
                if re.split(r"[/\\]", token.removeprefix("ExecStart="))[-1] in {"anomaly", "anomaly.exe"} and tokens[i + 1] in known:
                    args = []
                    for arg in tokens[i + 1 :]:
                        if arg in SHELL_OPERATORS or arg.startswith("#"):
                            break
                        args.append(arg)
                    lines.append(args)
                    break
    return found


def test_units_have_what_the_services_rely_on() -> None:
    for name in UNITS:
        service = unit(name)["Service"]
        assert service["Restart"] == "on-failure" and service["RestartSec"]
        assert service["KillSignal"] == "SIGTERM" and service["TimeoutStopSec"]
        assert service["EnvironmentFile"] == "/etc/anomaly/anomaly.env"
        assert service["User"] == service["Group"] == "anomaly"
        assert service["StandardError"] == "journal"
        assert service["RestartPreventExitStatus"] == "2"  # bad usage: a restart cannot fix it
        assert service["ExecStart"].startswith("/opt/anomaly/bin/anomaly ")
        assert unit(name)["Install"]["WantedBy"] == "multi-user.target"
    assert exec_start("anomaly-watch.service", env_example())[1:3] == ["forecast", "watch"]
    assert exec_start("anomaly-serve.service", env_example())[1] == "serve"


def test_env_example_sets_every_variable_the_units_use() -> None:
    env = env_example()
    for name in UNITS:
        used = set(re.findall(r"\$\{?(\w+)\}?", unit(name)["Service"]["ExecStart"]))
        assert used and used <= set(env), f"{name} uses {used - set(env)}, not in anomaly.env.example"


def test_units_verify_with_systemd(cli: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed (the units' keys are checked above)")
    paths = []
    for name in UNITS:
        # verify checks that ExecStart's program exists: the real binary.
        text = (DEPLOY / name).read_text().replace("/opt/anomaly/bin/anomaly", str(Path(cli).resolve()))
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    proc = subprocess.run([analyze, "verify", "--man=no", *map(str, paths)], capture_output=True, text=True,
                          timeout=120)
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if str(tmp_path) in line]
    assert proc.returncode == 0 and not complaints, proc.stdout + proc.stderr


def test_every_command_line_in_deploy_parses(cli: str) -> None:
    found = command_lines(cli)
    # The extraction must not silently miss the files' commands.
    assert len(found["anomaly-watch.service"]) == 1 and len(found["anomaly-serve.service"]) == 1
    assert len(found["Containerfile"]) >= 3  # docker run ... demo / forecast watch, RUN anomaly --version
    assert len(found["windows.md"]) >= 5  # --version, train, the two nssm installs, AppParameters
    for name, lines in found.items():
        for args in lines:
            # --help after the others: clap rejects an unknown flag or a bad
            # value before it, then prints the help of the subcommand reached.
            proc = subprocess.run([cli, *args, "--help"], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, f"{name}: anomaly {shlex.join(args)}\n{proc.stderr}"
            path = [a for a in args[:2] if re.fullmatch(r"[a-z][a-z-]*", a)]
            if path:  # the subcommand meant, not an argument taken for one
                assert f"Usage: anomaly {' '.join(path)} " in proc.stdout, f"{name}: {args}"


@pytest.fixture(scope="module")
def plant(cli: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo database and its models (the README's first command)."""
    folder = tmp_path_factory.mktemp("plant")
    subprocess.run([cli, "-q", "demo", "--db", f"sqlite:{folder / 'anomaly.db'}", "--models", str(folder / "models"),
                    "--variables", "3", "--days", "7"], check=True, capture_output=True, timeout=600)
    return folder


def test_every_command_line_in_deploy_runs(cli: str, plant: Path, tmp_path: Path) -> None:
    """The values too (durations, times, addresses are read after clap):
    each worker, server, training and demo line of deploy/ runs, on the
    demo database here instead of its paths."""
    env = os.environ | {"ANOMALY_DB": f"sqlite:{plant / 'anomaly.db'}"}  # for the lines without --db
    ran = 0
    for name, lines in command_lines(cli).items():
        for n, args in enumerate(lines):
            scratch = tmp_path / f"{name}-{n}"
            scratch.mkdir()
            local = list(args)
            for i, arg in enumerate(local[:-1]):
                if arg == "--db":
                    local[i + 1] = env["ANOMALY_DB"]
                elif arg == "--models":
                    # the worker reads (and retrains) the trained models; train and demo write new ones
                    models = plant / "models" if "watch" in local else scratch / "models"
                    local[i + 1] = str(models)
            where = f"{name}: anomaly {shlex.join(args)}"
            if local[:2] == ["forecast", "watch"]:
                proc = subprocess.run([cli, *local, "--max-iterations", "1"], cwd=scratch, env=env,
                                      capture_output=True, text=True, timeout=600)
            elif local[:2] == ["forecast", "train"] or local[0] == "demo":
                proc = subprocess.run([cli, *local], cwd=scratch, env=env, capture_output=True, text=True, timeout=600)
            elif local[0] == "serve":
                stop(serve_until_healthy(cli, local, scratch)[0])
                ran += 1
                continue
            else:
                continue
            assert proc.returncode == 0, f"{where}\n{proc.stderr}"
            ran += 1
    assert ran >= 8


def test_the_watch_unit_runs(cli: str, plant: Path) -> None:
    env = env_example() | {"ANOMALY_DB": f"sqlite:{plant / 'anomaly.db'}", "ANOMALY_MODELS": str(plant / "models")}
    args = exec_start("anomaly-watch.service", env)[1:] + ["--max-iterations", "1"]
    proc = subprocess.run([cli, *args], capture_output=True, text=True, timeout=600, cwd=plant,
                          env=os.environ | {"RUST_LOG": env["RUST_LOG"]})
    assert proc.returncode == 0, proc.stderr
    assert "summary: 1 iterations" in proc.stderr


def serve_until_healthy(cli: str, args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    args = [f"127.0.0.1:{port}" if a.endswith(":8080") else a for a in args]
    proc = subprocess.Popen([cli, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                assert r.status == 200
                return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"anomaly {shlex.join(args)} did not serve /health: {proc.communicate()[1]}")
            time.sleep(0.2)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err


def test_the_serve_unit_runs(cli: str, plant: Path) -> None:
    env = env_example() | {"ANOMALY_DB": f"sqlite:{plant / 'anomaly.db'}"}
    proc, port = serve_until_healthy(cli, exec_start("anomaly-serve.service", env)[1:], plant)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/summary", timeout=10) as r:
            assert json.load(r)["results"] == 3 * 7 * 288
    finally:
        stop(proc)


def containerfile() -> str:
    return (DEPLOY / "Containerfile").read_text()


def instruction(name: str) -> list[str]:
    """The JSON (exec) form of an instruction, e.g. CMD [...]."""
    match = re.search(rf"^{name} (\[.*\])$", containerfile(), flags=re.M)
    assert match, name
    return list(json.loads(match.group(1)))


def test_containerfile_builds_the_wheel_and_installs_it() -> None:
    text = containerfile()
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?$", text, flags=re.M)
    assert stages[0][0].startswith("rust:") and stages[0][1] == "build"
    assert stages[-1][0].startswith("python:3.11-slim")
    assert "scripts/build-wheel --out /dist" in text and "COPY --from=build /dist/" in text
    assert re.search(r"pip install .*/tmp/dist/anomaly-\*\.whl", text)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M):
        *sources, _ = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "target/" in ignored and ".venv/" in ignored
    assert instruction("ENTRYPOINT") == ["anomaly"]
    assert "STOPSIGNAL SIGTERM" in text


def test_the_image_command_and_healthcheck_run(cli: str, plant: Path) -> None:
    """The image's default command (with the database here and a free
    port), probed by its HEALTHCHECK command as written."""
    args = [f"sqlite:{plant / 'anomaly.db'}" if a.startswith("sqlite:/data/") else a for a in instruction("CMD")]
    assert args[0] == "serve"
    health = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$", containerfile(), flags=re.M)
    assert health
    probe = json.loads(health.group(1))
    assert probe[0] == "python" and "/health" in probe[-1]
    proc, port = serve_until_healthy(cli, args, plant)
    try:
        probe = [sys.executable if p == "python" else p.replace(":8080", f":{port}") for p in probe]
        assert subprocess.run(probe, timeout=30).returncode == 0
    finally:
        stop(proc)
