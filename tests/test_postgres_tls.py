"""TLS to PostgreSQL: libpq's `sslmode` in the URL, against a real server
that accepts TCP connections only over TLS (`hostssl` in pg_hba.conf)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import PostgresServer


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[Any, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (needed to make the test server's certificate)")
    root = Path(tempfile.mkdtemp(prefix="anomaly-pg-tls-"))
    server = PostgresServer(root)
    try:
        server.stop()
        crt, key, ca = server.dir / "server.crt", server.dir / "server.key", root / "ca.crt"
        # A CA, and a server certificate it signs for the name localhost only
        # (so that 127.0.0.1 tells verify-ca from verify-full).
        openssl = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test CA", "-keyout", str(root / "ca.key"),
                "-out", str(ca), "-days", "2")  # fmt: skip
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(key),
                "-out", str(root / "server.csr"))  # fmt: skip
        (root / "ext.cnf").write_text("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n")
        openssl("x509", "-req", "-in", str(root / "server.csr"), "-CA", str(ca), "-CAkey", str(root / "ca.key"),
                "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(root / "ext.cnf"))  # fmt: skip
        os.chmod(key, 0o600)
        if os.geteuid() == 0:
            shutil.chown(key, "postgres")
            shutil.chown(crt, "postgres")
        with open(server.dir / "postgresql.conf", "a") as conf:
            conf.write(f"\nssl = on\nssl_cert_file = '{crt}'\nssl_key_file = '{key}'\n")
        hba = server.dir / "pg_hba.conf"
        lines = [line.replace("host ", "hostssl ", 1) if line.startswith("host ") else line
                 for line in hba.read_text().splitlines()]  # fmt: skip
        hba.write_text("\n".join(lines) + "\n")
        server.start()
        yield server, ca
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def connect(cli: str, url: str, home: Path) -> subprocess.CompletedProcess[str]:
    """A job that connects and writes: a day of simulated readings."""
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run([cli, "forecast", "simulate", "--db", url, "--variables", "1", "--days", "1", "-q"],
                          capture_output=True, text=True, check=False, env=env)  # fmt: skip


def test_sslmode_in_the_url(cli: str, tls_server: tuple[Any, Path], tmp_path: Path) -> None:
    server, crt = tls_server
    db = server.database()
    at = lambda host, query: f"postgres://anomaly@{host}:{server.port}/{db}{query}"  # noqa: E731
    for query in ["", "?sslmode=prefer", "?sslmode=require", f"?sslmode=verify-ca&sslrootcert={crt}"]:
        run = connect(cli, at("127.0.0.1", query), tmp_path)
        assert run.returncode == 0, (query, run.stderr)
    run = connect(cli, at("localhost", f"?sslmode=verify-full&sslrootcert={crt}"), tmp_path)
    assert run.returncode == 0, run.stderr
    # The server takes TCP only over TLS: without it the login is refused, a permanent error.
    run = connect(cli, at("127.0.0.1", "?sslmode=disable"), tmp_path)
    assert run.returncode == 2 and "no encryption" in run.stderr, run.stderr
    # verify-full checks the name: the certificate is for localhost, not 127.0.0.1.
    run = connect(cli, at("127.0.0.1", f"?sslmode=verify-full&sslrootcert={crt}"), tmp_path)
    assert run.returncode != 0 and "not valid for name \"127.0.0.1\"" in run.stderr, run.stderr
    # A CA that did not sign the server's certificate.
    other = tmp_path / "other.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other", "-keyout",
                    str(tmp_path / "other.key"), "-out", str(other), "-days", "2"], check=True, capture_output=True)  # fmt: skip
    run = connect(cli, at("localhost", f"?sslmode=verify-full&sslrootcert={other}"), tmp_path)
    assert run.returncode != 0 and "UnknownIssuer" in run.stderr, run.stderr
    # Settings that can never work are bad input (exit 2), named.
    run = connect(cli, at("localhost", "?sslmode=verify-full"), tmp_path)  # no sslrootcert, no ~/.postgresql/root.crt
    assert run.returncode == 2 and "sslrootcert" in run.stderr, run.stderr
    run = connect(cli, at("localhost", "?sslmode=maybe"), tmp_path)
    assert run.returncode == 2 and "sslmode=maybe" in run.stderr, run.stderr
    assert server.sql("SELECT COUNT(DISTINCT variable_name) FROM datos_proceso", db) == [["1"]]
