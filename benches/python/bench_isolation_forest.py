"""anomaly.IsolationForest against scikit-learn's and SHAP's, in the same run.

    .venv/bin/python benches/python/bench_isolation_forest.py            # everything, best of 3
    .venv/bin/python benches/python/bench_isolation_forest.py --quick    # smoke run, about 15 s
    .venv/bin/python benches/python/bench_isolation_forest.py --sets shuttle,gauss-500k-3 --parts speed

Prints the results as JSON, then as markdown tables (progress goes to
stderr), and writes the JSON to test-artifacts/bench_isolation_forest.json.
Three parts (``--parts``, default all three):

speed
    For every ADBench set in ../shared/data/adbench (``*_NAME.npz``, keys X
    and y; skipped with a message when the folder is absent) and two
    generated sets, gauss-500k-3 and gauss-300k-10 (``gauss-<N>k-<d>``: N
    thousand rows of d standard-normal features, 1% of them, chosen at
    random, replaced by uniform(-6, 6) outliers labelled 1; seed 0):
    ``fit(X).score_samples(X)`` on the training rows, in one Python call, of
    ``sklearn.ensemble.IsolationForest(random_state=0, n_jobs=1)`` and
    ``anomaly.IsolationForest(random_state=0, n_jobs=1)``.

    - *CPU s*: ``time.process_time`` (all threads of the process) around
      the whole call, validation and float32 conversion included; best of
      ``--repeat`` runs (3). *wall s*: ``time.perf_counter``, best of the same runs.
    - *CPU ratio*: scikit-learn CPU / ours CPU, one thread each; the
      target is >= 5 on every set. *wall ratio* likewise.
    - *all cores*: ours with ``n_jobs=None`` (every core), best wall time.
    - *AUC*: ROC-AUC of ``-score_samples`` against y, for each tool.
    - *peak RSS*: ``ru_maxrss`` of a fresh process that loads the set and
      does the same call once, imports (Python, numpy, scikit-learn) included.

explain
    6 features, 5000 rows (gauss-5k-6). ``anomaly.IsolationForest(
    n_estimators=200, random_state=0).fit(X).explain(X[:k])`` with
    ``n_jobs=1`` and with every core, against
    ``shap.TreeExplainer(sklearn IsolationForest(n_estimators=200,
    random_state=0).fit(X)).shap_values(X[:k])`` (SHAP's defaults, its
    additivity check included), k = ``--explain-rows`` (500); ms per row,
    best of ``--repeat``, and shap / ours; shap without its additivity
    check beside it. Building the TreeExplainer is timed apart and not in
    shap's per-row figures.

breakdown
    Where ours spends one thread's CPU time on tall, narrow data
    (``--breakdown-sets``: http-like, gauss-500k-3, and gauss-300k-10, the
    widest of the large sets). ``http-like`` is generated, not the ADBench
    http set: 567,479 x 3 like it, log(x + 0.1) of integer duration /
    bytes sent / bytes received with few distinct values (the real set's
    shape), 0.4% outliers. Parts, each best of
    ``--repeat``: ``validate_data`` as ``fit`` calls it (of which the bare
    float64 -> float32 copy, and the finiteness check that scikit-learn's
    own IsolationForest skips), the Rust fit
    (``_anomaly.IsolationForestModel.fit``), ``validate_data`` again as
    ``score_samples`` calls it, the Rust scoring (``_forest.score_samples``,
    also in ns per row per tree); *rest* is the whole call minus those
    (Python glue; it can come out slightly negative, from noise).
    scikit-learn's ``fit`` and ``score_samples`` are timed apart beside
    it, and the CPU budget for 5x (scikit-learn's whole call / 5).

Timings are noisy on a loaded machine: compare within one run.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ADBENCH = ROOT.parent / "shared" / "data" / "adbench"
GENERATED = ["gauss-500k-3", "gauss-300k-10"]
BREAKDOWN = ["http-like", "gauss-500k-3", "gauss-300k-10"]
HTTP_ROWS = 567_479


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def adbench_names() -> list[str]:
    """The ADBench sets present, by name (``32_shuttle.npz`` -> ``shuttle``), in file-number order."""
    if not ADBENCH.is_dir():
        return []
    files = sorted(ADBENCH.glob("*_*.npz"), key=lambda p: int(p.name.split("_")[0]))
    return [p.stem.split("_", 1)[1] for p in files]


def gauss(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n x d standard-normal rows, 1% of them (random rows) uniform(-6, 6) outliers labelled 1.

    Filled in place, so making the set adds no temporary copy to a process's peak memory.
    """
    rng = np.random.default_rng(seed)
    X = np.empty((n, d))
    rng.standard_normal(out=X)
    out = rng.choice(n, size=max(1, n // 100), replace=False)
    X[out] = rng.uniform(-6, 6, size=(len(out), d))
    y = np.zeros(n)
    y[out] = 1
    return X, y


def http_like(n: int = HTTP_ROWS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for ADBench's http set (KDD Cup 99, 567,479 x 3, 0.39% attacks).

    Columns are log(x + 0.1) of integer counts as in that set: duration
    (0 for 95% of rows), bytes sent (~ 200-300) and bytes received (log-normal
    around 2-3 kB), so values repeat a lot. Outliers send tens of kB and
    receive little, or take long.
    """
    rng = np.random.default_rng(seed)
    n_out = max(1, round(n * 0.0039))
    duration = np.where(rng.random(n) < 0.95, 0, rng.integers(1, 30, n))
    sent = np.rint(rng.normal(240, 30, n)).clip(1)
    received = np.rint(rng.lognormal(7.8, 0.9, n)).clip(0)
    out = rng.choice(n, size=n_out, replace=False)
    half = n_out // 2
    sent[out[:half]] = rng.integers(20_000, 60_000, half)
    received[out[:half]] = rng.integers(0, 300, half)
    duration[out[half:]] = rng.integers(100, 5_000, n_out - half)
    X = np.log(np.column_stack([duration, sent, received]).astype(np.float64) + 0.1)
    y = np.zeros(n)
    y[out] = 1
    return X, y


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A set by name: ``gauss-<N>k-<d>``, ``http-like`` (or ``http-like-<N>k``), or an ADBench name."""
    m = re.fullmatch(r"gauss-(\d+)k-(\d+)", name)
    if m:
        return gauss(int(m[1]) * 1000, int(m[2]))
    m = re.fullmatch(r"http-like(?:-(\d+)k)?", name)
    if m:
        return http_like(int(m[1]) * 1000 if m[1] else HTTP_ROWS)
    found = [p for p in ADBENCH.glob("*_*.npz") if p.stem.split("_", 1)[1].lower() == name.lower()]
    if not found:
        raise SystemExit(f"unknown set {name!r}: not generated (gauss-<N>k-<d>, http-like[-<N>k]) and not in {ADBENCH}")
    data = np.load(found[0])
    return data["X"], data["y"]


def model(tool: str, threads: int | None, **params: Any) -> Any:
    if tool == "sklearn":
        from sklearn.ensemble import IsolationForest as SkForest

        return SkForest(random_state=0, n_jobs=threads, **params)
    from anomaly import IsolationForest

    return IsolationForest(random_state=0, n_jobs=threads, **params)


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """(CPU s, wall s, result) of one call, after a garbage collection."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    result = call()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def best(call: Callable[[], Any], repeat: int) -> dict[str, Any]:
    """Best CPU and best wall time over ``repeat`` calls, and the last result."""
    runs = [timed(call) for _ in range(repeat)]
    return {"cpu": min(r[0] for r in runs), "wall": min(r[1] for r in runs), "result": runs[-1][2]}


def run_once(tool: str, name: str, threads: int | None) -> float:
    """One fit + score_samples on a freshly loaded set (what the peak-memory process runs)."""
    X, _ = load(name)
    start = time.perf_counter()
    model(tool, threads).fit(X).score_samples(X)
    return time.perf_counter() - start


def peak_rss_mb(tool: str, name: str, threads: int | None) -> float:
    code = (
        "import sys, resource; sys.path.insert(0, %r); import bench_isolation_forest as b; "
        "b.run_once(%r, %r, %r); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    ) % (str(Path(__file__).parent), tool, name, threads)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024


def warm_up() -> None:
    """First calls pay lazy imports and page faults; keep them out of the first timed run."""
    X, _ = gauss(2000, 3)
    for tool in ("sklearn", "anomaly"):
        model(tool, 1).fit(X).score_samples(X)


def bench_speed(names: list[str], repeat: int, rss: bool) -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score

    rows = []
    for name in names:
        X, y = load(name)
        log(f"speed: {name} {X.shape[0]} x {X.shape[1]}")
        row: dict[str, Any] = {"data": name, "shape": list(X.shape)}
        for key, tool, threads in (("sklearn", "sklearn", 1), ("anomaly", "anomaly", 1), ("anomaly_all_cores", "anomaly", None)):
            r = best(lambda: model(tool, threads).fit(X).score_samples(X), repeat)
            entry = {"cpu_s": r["cpu"], "wall_s": r["wall"]}
            if threads == 1:
                entry["auc"] = float(roc_auc_score(y, -r["result"]))
                if rss:
                    entry["peak_rss_mb"] = peak_rss_mb(tool, name, threads)
            row[key] = entry
        sk, ours = row["sklearn"], row["anomaly"]
        row["cpu_ratio"] = sk["cpu_s"] / ours["cpu_s"]
        row["wall_ratio"] = sk["wall_s"] / ours["wall_s"]
        row["all_cores_wall_ratio"] = sk["wall_s"] / row["anomaly_all_cores"]["wall_s"]
        log(
            f"  scikit-learn {sk['cpu_s']:.3f} s CPU | ours {ours['cpu_s']:.3f} s CPU = {row['cpu_ratio']:.1f}x"
            f" | all cores {row['anomaly_all_cores']['wall_s']:.3f} s wall | AUC {sk['auc']:.4f} / {ours['auc']:.4f}"
        )
        rows.append(row)
    return rows


def bench_explain(k: int, repeat: int) -> dict[str, Any]:
    import shap
    from sklearn.ensemble import IsolationForest as SkForest

    X, _ = gauss(5000, 6)
    rows = X[:k]
    log(f"explain: 200 trees, {X.shape[0]} x {X.shape[1]}, {k} rows")
    ours = model("anomaly", 1, n_estimators=200).fit(X)
    one = best(lambda: ours.explain(rows), repeat)
    ours.set_params(n_jobs=None)
    every = best(lambda: ours.explain(rows), repeat)
    sk = SkForest(n_estimators=200, random_state=0, n_jobs=1).fit(X)
    build = best(lambda: shap.TreeExplainer(sk), repeat)
    explainer = build["result"]
    sh = best(lambda: explainer.shap_values(rows), repeat)
    unchecked = best(lambda: explainer.shap_values(rows, check_additivity=False), repeat)
    ms = 1000 / k
    result = {
        "data": "gauss-5k-6",
        "n_estimators": 200,
        "rows": k,
        "anomaly_1t_ms_per_row": one["wall"] * ms,
        "anomaly_1t_cpu_ms_per_row": one["cpu"] * ms,
        "anomaly_all_cores_ms_per_row": every["wall"] * ms,
        "shap_ms_per_row": sh["wall"] * ms,
        "shap_cpu_ms_per_row": sh["cpu"] * ms,
        "shap_no_additivity_check_ms_per_row": unchecked["wall"] * ms,
        "shap_explainer_build_s": build["wall"],
    }
    result["ratio_1t"] = result["shap_ms_per_row"] / result["anomaly_1t_ms_per_row"]
    result["ratio_all_cores"] = result["shap_ms_per_row"] / result["anomaly_all_cores_ms_per_row"]
    log(
        f"  ours {result['anomaly_1t_ms_per_row']:.4f} ms/row (1 thread), {result['anomaly_all_cores_ms_per_row']:.4f}"
        f" (all cores) | shap {result['shap_ms_per_row']:.4f} ms/row = {result['ratio_1t']:.1f}x / {result['ratio_all_cores']:.1f}x"
    )
    return result


def bench_breakdown(names: list[str], repeat: int) -> list[dict[str, Any]]:
    from sklearn.utils.validation import _assert_all_finite, validate_data

    from anomaly import _anomaly

    rows = []
    for name in names:
        X, _ = load(name)
        log(f"breakdown: {name} {X.shape[0]} x {X.shape[1]}")
        n, d = X.shape

        def cpu(call: Callable[[], Any]) -> float:
            return float(best(call, repeat)["cpu"])

        whole = cpu(lambda: model("anomaly", 1).fit(X).score_samples(X))
        est = model("anomaly", 1)
        validate_fit = cpu(lambda: validate_data(model("anomaly", 1), X, accept_sparse=["csc", "csr"], dtype=np.float32, order="C"))
        Xf = np.ascontiguousarray(X, dtype=np.float32)
        astype = cpu(lambda: np.asarray(X, dtype=np.float32, order="C"))
        finite = cpu(lambda: _assert_all_finite(Xf, input_name="X", estimator_name="IsolationForest"))
        # The parameters fit() passes for the defaults with random_state=0.
        seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
        params = json.dumps(
            {"n_estimators": 100, "max_samples": "auto", "contamination": "auto", "max_features": 1,
             "bootstrap": False, "random_state": seed, "extension_level": 0}
        )
        rust_fit = cpu(lambda: _anomaly.IsolationForestModel.fit(Xf, params, 1))
        est.fit(X)
        validate_score = cpu(lambda: validate_data(est, X, accept_sparse="csr", dtype=np.float32, order="C", reset=False))
        forest = est._forest
        rust_score = cpu(lambda: forest.score_samples(Xf, 1))
        sk_fit = cpu(lambda: model("sklearn", 1).fit(X))
        sk_est = model("sklearn", 1).fit(X)
        sk_score = cpu(lambda: sk_est.score_samples(X))
        sk_whole = cpu(lambda: model("sklearn", 1).fit(X).score_samples(X))
        parts = {
            "validate_fit_s": validate_fit,
            "rust_fit_s": rust_fit,
            "validate_score_s": validate_score,
            "rust_score_s": rust_score,
        }
        row: dict[str, Any] = {
            "data": name,
            "shape": [n, d],
            "anomaly_whole_cpu_s": whole,
            **parts,
            "rest_s": whole - sum(parts.values()),
            "float32_copy_s": astype,
            "finite_check_s": finite,
            "rust_score_ns_per_row_tree": rust_score / (n * 100) * 1e9,
            "sklearn_fit_cpu_s": sk_fit,
            "sklearn_score_cpu_s": sk_score,
            "sklearn_whole_cpu_s": sk_whole,
            "budget_5x_s": sk_whole / 5,
            "cpu_ratio": sk_whole / whole,
        }
        log(
            "  ours " + ", ".join(f"{k[:-2]} {v * 1000:.1f} ms" for k, v in parts.items())
            + f", whole {whole * 1000:.1f} ms | scikit-learn {sk_whole * 1000:.1f} ms, 5x budget {sk_whole / 5 * 1000:.1f} ms"
        )
        rows.append(row)
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    speed = results.get("speed")
    if speed:
        lines += [
            f"fit + score_samples on the training rows, best of {results['repeat']}; ratio = scikit-learn / ours, one thread each",
            "",
            "| data | n x d | scikit-learn CPU s | ours CPU s | CPU ratio | scikit-learn wall s | ours wall s | wall ratio"
            " | ours all cores wall s | AUC scikit-learn / ours | peak RSS MB scikit-learn / ours |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in speed:
            sk, ours, every = r["sklearn"], r["anomaly"], r["anomaly_all_cores"]
            rss = f"{sk['peak_rss_mb']:.0f} / {ours['peak_rss_mb']:.0f}" if "peak_rss_mb" in sk else "-"
            flag = "" if r["cpu_ratio"] >= 5 else " (< 5)"
            lines.append(
                f"| {r['data']} | {r['shape'][0]} x {r['shape'][1]} | {sk['cpu_s']:.4f} | {ours['cpu_s']:.4f}"
                f" | **{r['cpu_ratio']:.1f}x**{flag} | {sk['wall_s']:.4f} | {ours['wall_s']:.4f} | {r['wall_ratio']:.1f}x"
                f" | {every['wall_s']:.4f} ({r['all_cores_wall_ratio']:.1f}x) | {sk['auc']:.4f} / {ours['auc']:.4f} | {rss} |"
            )
        worst = min(speed, key=lambda r: r["cpu_ratio"])
        lines += ["", f"lowest CPU ratio: {worst['cpu_ratio']:.1f}x on {worst['data']}", ""]
    ex = results.get("explain")
    if ex:
        lines += [
            f"explain, {ex['n_estimators']} trees, {ex['data']}, {ex['rows']} rows, best of {results['repeat']} (ms per row, wall)",
            "",
            "| anomaly explain, 1 thread | anomaly explain, all cores | shap TreeExplainer.shap_values | shap / ours (1 thread) | shap / ours (all cores) |",
            "|---|---|---|---|---|",
            f"| {ex['anomaly_1t_ms_per_row']:.4f} | {ex['anomaly_all_cores_ms_per_row']:.4f} | {ex['shap_ms_per_row']:.4f}"
            f" | **{ex['ratio_1t']:.1f}x** | {ex['ratio_all_cores']:.1f}x |",
            "",
            f"(shap without its additivity check: {ex['shap_no_additivity_check_ms_per_row']:.4f} ms per row;"
            f" building shap's TreeExplainer: {ex['shap_explainer_build_s']:.3f} s, not counted above)",
            "",
        ]
    bd = results.get("breakdown")
    if bd:
        lines += [
            f"where ours spends CPU time, one thread, best of {results['repeat']} (ms)",
            "",
            "| data | n x d | validate_data in fit (float32 copy / finite check) | Rust fit | validate_data in score_samples"
            " | Rust scoring (ns per row-tree) | rest | ours whole | scikit-learn fit / score_samples / whole | 5x budget | CPU ratio |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in bd:
            lines.append(
                f"| {r['data']} | {r['shape'][0]} x {r['shape'][1]}"
                f" | {r['validate_fit_s'] * 1e3:.1f} ({r['float32_copy_s'] * 1e3:.1f} / {r['finite_check_s'] * 1e3:.1f})"
                f" | {r['rust_fit_s'] * 1e3:.1f} | {r['validate_score_s'] * 1e3:.1f}"
                f" | {r['rust_score_s'] * 1e3:.1f} ({r['rust_score_ns_per_row_tree']:.1f}) | {r['rest_s'] * 1e3:.1f}"
                f" | {r['anomaly_whole_cpu_s'] * 1e3:.1f}"
                f" | {r['sklearn_fit_cpu_s'] * 1e3:.1f} / {r['sklearn_score_cpu_s'] * 1e3:.1f} / {r['sklearn_whole_cpu_s'] * 1e3:.1f}"
                f" | {r['budget_5x_s'] * 1e3:.1f} | {r['cpu_ratio']:.1f}x |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=None, help="best of this many runs (3; 1 with --quick)")
    parser.add_argument("--sets", help="comma-separated sets for the speed part (default: every ADBench set, " + ", ".join(GENERATED) + ")")
    parser.add_argument("--breakdown-sets", help="comma-separated sets for the breakdown (default: " + ", ".join(BREAKDOWN) + ")")
    parser.add_argument("--parts", default="speed,explain,breakdown", help="comma-separated: speed, explain, breakdown")
    parser.add_argument("--explain-rows", type=int, default=None, help="rows explained (500; 50 with --quick)")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--quick", action="store_true", help="smoke run: best of 1 on small sets (glass, shuttle, gauss-50k-3; breakdown on http-like-60k, gauss-50k-3)")
    parser.add_argument("--json", type=Path, default=ROOT / "test-artifacts" / "bench_isolation_forest.json", help="where to write the JSON")
    args = parser.parse_args()

    repeat = args.repeat or (1 if args.quick else 3)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - {"speed", "explain", "breakdown"}
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if args.sets:
        names = [s.strip() for s in args.sets.split(",") if s.strip()]
    elif args.quick:
        names = ["glass", "shuttle", "gauss-50k-3"] if ADBENCH.is_dir() else ["gauss-50k-3"]
    else:
        names = adbench_names() + GENERATED
    if not args.sets and not ADBENCH.is_dir():
        log(f"ADBench sets not found at {ADBENCH}: speed part on the generated sets only")
    if args.breakdown_sets:
        breakdown_names = [s.strip() for s in args.breakdown_sets.split(",") if s.strip()]
    else:
        breakdown_names = ["http-like-60k", "gauss-50k-3"] if args.quick else BREAKDOWN

    warm_up()
    results: dict[str, Any] = {"repeat": repeat}
    if "speed" in parts:
        results["speed"] = bench_speed(names, repeat, rss=not args.no_rss)
    if "explain" in parts:
        results["explain"] = bench_explain(args.explain_rows or (50 if args.quick else 500), repeat)
    if "breakdown" in parts:
        results["breakdown"] = bench_breakdown(breakdown_names, repeat)

    text = json.dumps(results, indent=2)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text)
    print(text)
    print()
    print(markdown(results))


if __name__ == "__main__":
    main()
