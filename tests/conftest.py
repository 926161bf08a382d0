"""Shared fixtures: synthetic readings, the CLI binary and the real data folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

import anomaly

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ANOMALY_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def readings() -> pd.DataFrame:
    df, _ = anomaly.consumption.simulate(clients=12, days=45, seed=3)
    return df


@pytest.fixture(scope="session")
def cli() -> str:
    """Path of the `anomaly` binary (built by the test command)."""
    path = os.environ.get("ANOMALY_CLI") or shutil.which("anomaly")
    if not path or not Path(path).exists():
        candidate = ROOT / "target" / "release" / "anomaly"
        if not candidate.exists():
            pytest.skip("the anomaly CLI is not built; run scripts/test")
        path = str(candidate)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


class PostgresServer:
    """A throwaway PostgreSQL server (Debian's package) in a temporary
    directory on a free loopback port; `database()` makes a fresh database."""

    def __init__(self, root: Path) -> None:
        import glob
        import socket
        import subprocess

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.skip("PostgreSQL is not installed (scripts/test installs Debian's postgresql package)")
        self.bin = Path(bins[-1]).parent
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = root / "pgdata"
        self.sock = root / "pgsock"
        self.sock.mkdir()
        # initdb refuses to run as root: run the server as the postgres user.
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            shutil.chown(root, "postgres")
            shutil.chown(self.sock, "postgres")
        self._run = subprocess.run
        self.check([str(self.bin / "initdb"), "-D", str(self.dir), "-U", "anomaly", "--auth=trust", "-E", "UTF8"])
        self.start()
        self.n = 0

    def check(self, args: list[str]) -> None:
        proc = self._run([*self.prefix, *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr + proc.stdout

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.check([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-o", options, "-w", "-l", str(self.dir / "log"), "start"])

    def stop(self) -> None:
        self.check([str(self.bin / "pg_ctl"), "-D", str(self.dir), "-m", "fast", "-w", "stop"])

    def url(self, database: str = "postgres") -> str:
        return f"postgres://anomaly@127.0.0.1:{self.port}/{database}"

    def sql(self, query: str, database: str = "postgres") -> list[list[str]]:
        proc = self._run(
            [str(self.bin / "psql"), "-At", "-F", "\t", "-d", self.url(database), "-c", query],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return [line.split("\t") for line in proc.stdout.splitlines()]

    def database(self) -> str:
        self.n += 1
        name = f"t{self.n}"
        self.sql(f"CREATE DATABASE {name}")
        return name


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = Path(tempfile.mkdtemp(prefix="anomaly-pg-"))
    server = PostgresServer(root)
    yield server
    try:
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
