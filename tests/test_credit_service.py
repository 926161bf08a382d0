"""`anomaly serve`: the credit model over HTTP, as the Flask endpoint it
replaces. A real server process on a free loopback port: probabilities equal
scikit-learn's, every bad request gets a 4xx naming the fields, metrics,
OpenAPI document and docs page, graceful shutdown on SIGTERM, and a
schemathesis fuzz run against the OpenAPI document finds no 5xx."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from anomaly.credit_risk import export_sklearn
from test_credit_export import german, models  # noqa: F401 - fixture and model zoo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, cli: str, model: Path, *extra: str) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [cli, "serve", "--credit-model", str(model), "--addr", self.url.removeprefix("http://"), *extra],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(100):
            try:
                self.get("/health")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.stop()}")

    def request(self, path: str, body: bytes | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        return status, (json.loads(text) if text.startswith(("{", "[")) else text)

    def get(self, path: str) -> Any:
        return self.request(path)[1]

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        return self.request(path, json.dumps(payload).encode())

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=10)
        return err


@pytest.fixture(scope="module")
def service(german: tuple[pd.DataFrame, pd.Series], cli: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any, pd.DataFrame]]:  # noqa: F811
    X, y = german
    pipeline = models(X)["random_forest"].fit(X, y)
    path = tmp_path_factory.mktemp("serve") / "credit.json"
    export_sklearn(pipeline, path, sample=X)
    server = Server(cli, path, "--max-body-bytes", "200000")
    yield server, pipeline, X
    err = server.stop()
    assert server.process.returncode == 0, err
    assert "SIGTERM" in err and "stopped" in err


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON applicants as a form would send them: missing cells as null."""
    return json.loads(frame.to_json(orient="records"))


def test_probabilities_equal_scikit_learn(service: tuple[Server, Any, pd.DataFrame]) -> None:
    server, pipeline, X = service
    batch = X.head(300)
    status, out = server.post("/predict", records(batch))
    assert status == 200 and len(out) == len(batch)
    expected = pipeline.predict_proba(batch)
    got = np.array([[r["probabilities"][str(c)] for c in pipeline.classes_] for r in out])
    np.testing.assert_array_equal(got, expected)
    assert [r["prediction"] for r in out] == list(pipeline.predict(batch))
    np.testing.assert_array_equal([r["confidence"] for r in out], expected.max(axis=1))
    status, one = server.post("/predecir", records(X.head(1))[0])  # one object -> one object, Spanish names
    assert status == 200 and set(one) == {"prediccion", "probabilidades", "confianza"}
    assert one["confianza"] == expected[0].max()


def test_bad_requests_name_every_field(service: tuple[Server, Any, pd.DataFrame]) -> None:
    server, _, X = service
    for empty in ({}, [], [{}]):
        status, out = server.post("/predict", empty)
        assert status == 400 and out["error"]["code"] == "E001", out
    assert server.request("/predict", b"  ")[1]["error"]["code"] == "E001"
    status, out = server.request("/predict", b"{not json")
    assert status == 400 and out["error"]["code"] == "E002" and out["error"]["fields"][0]["field"] == "body"

    applicant = records(X.head(1))[0]
    bad = dict(applicant, duration="twelve", age={"nested": 1})
    del bad["housing"]
    status, out = server.post("/predict", bad)
    assert status == 400 and out["error"]["code"] == "E002"
    fields = {(f["field"], f["row"]) for f in out["error"]["fields"]}
    assert fields == {("housing", None), ("duration", 0), ("age", 0)}, out
    assert "housing" in out["error"]["message"] and "twelve" in out["error"]["message"]

    status, out = server.post("/predict", [applicant] * 3000)  # > 200,000 bytes
    assert status == 413 and out["error"]["code"] == "E413"


def test_metrics_health_openapi_and_docs(service: tuple[Server, Any, pd.DataFrame]) -> None:
    server, pipeline, X = service
    server.post("/predict", records(X.head(5)))
    metrics = server.get("/metrics.json")
    assert metrics["state"] in {"EXCELENTE", "BUENO", "REGULAR", "CRITICO"}
    assert metrics["requests"] >= 1 and metrics["succeeded"] >= 1
    assert 0 < metrics["latency_ms"]["p50"] <= metrics["latency_ms"]["p95"] <= metrics["latency_ms"]["p99"]
    health = server.get("/health")
    assert health["status"] == "ok" and health["model"]["classes"] == [1, 2]
    assert server.request("/ready") == (200, {"ready": True, "model": True, "database": None})
    doc = server.get("/openapi.json")
    assert {"/predict", "/predecir", "/metrics", "/metrics.json", "/health", "/ready"} <= set(doc["paths"])
    assert doc["openapi"].startswith("3.")
    assert set(doc["components"]["schemas"]["Applicant"]["required"]) == set(X.columns)
    page = server.get("/docs")
    assert "<h1>anomaly credit scoring</h1>" in page and "purpose" in page


def test_prometheus_metrics_parse_and_count_every_route(service: tuple[Server, Any, pd.DataFrame]) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server, _, X = service
    server.post("/predict", records(X.head(2)))
    server.post("/predict", {"nothing": 1})
    server.get("/health")
    families = {f.name: f for f in text_string_to_metric_families(server.get("/metrics"))}
    requests = {(s.labels["route"], s.labels["status"]): s.value for s in families["anomaly_http_requests"].samples}
    assert requests[("/predict", "200")] >= 1 and requests[("/predict", "400")] >= 1 and requests[("/health", "200")] >= 1
    latency = families["anomaly_http_request_duration_seconds"]
    assert latency.type == "histogram"
    count = {s.labels["route"]: s.value for s in latency.samples if s.name.endswith("_count")}
    assert count["/predict"] >= 2
    info = next(s for s in families["anomaly_model_info"].samples)
    assert info.labels["kind"] == "credit" and info.labels["classes"] == "1,2"


def test_fuzzing_the_openapi_document_finds_no_server_error(service: tuple[Server, Any, pd.DataFrame]) -> None:
    server, _, _ = service
    beside = Path(sys.executable).parent / "st"  # the test venv's, even when not on PATH
    st = str(beside) if beside.exists() else shutil.which("st")
    if st is None:
        pytest.skip("schemathesis is not installed (requirements-dev.txt)")
    run = subprocess.run(
        [st, "run", f"{server.url}/openapi.json", "--checks",
         "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
         "--max-examples", "100", "--seed", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert server.get("/metrics.json")["server_errors"] == 0
