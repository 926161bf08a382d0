"""Prophet's own test suite, run against anomaly.

The test modules shipped in the installed prophet wheel are copied to a
temporary directory at test time, their imports switched to anomaly's
(``from prophet import Prophet`` becomes ``from anomaly import Prophet``, and
diagnostics, serialize, utilities and metrics become anomaly's), and run with
pytest in a subprocess. Nothing of prophet's is kept in this repository.

Every prophet test that does not pass must be listed in
:data:`EXPECTED_NOT_PASSING` with its reason; a listed test that passes fails
here, so the list stays honest. Run with ``-rA`` to see it printed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

MCMC = "MCMC sampling: anomaly.Prophet fits the exact MAP estimate and refuses mcmc_samples > 0"
LBFGS = (
    "pins where Stan's default L-BFGS stops (RMSE 10.64 absmax); the exact optimum gives 23.44, "
    "which is what prophet's own test_fit_predict_newton expects"
)
SLOW_MCMC = MCMC + " (marked slow: skipped without --test-slow)"
# data3.csv: 40 rows against 33 parameters, so the model can all but
# interpolate the history and the test pins where Stan's optimiser stops.
LARGE_ABSMAX = (
    "pins where Stan's L-BFGS stops on data3 (40 rows, 33 parameters, y_scaled in [0.999998, 1]): the posterior "
    "grows without bound as sigma_obs -> 0; L-BFGS stops at RMSE 127.01, Stan's Newton at 82.45; ours, with "
    "sigma_obs floored at 1e-9 (log posterior 741.9 against Newton's 728.1), gives 80.09"
)
LARGE_MINMAX = (
    "pins where Stan stops on data3's flat optimum (40 rows, 33 parameters): our log posterior 166.904 is above "
    "Stan's 166.862 (L-BFGS and Newton alike), along a direction the objective barely sees, giving RMSE 95.7 "
    "where the test pins 93.45 +-1%"
)

EXPECTED_NOT_PASSING: dict[str, str] = {
    "test_prophet.py::TestProphetFitPredictDefault::test_fit_predict[CMDSTANPY-absmax]": LBFGS,
    "test_prophet.py::TestProphetFitPredictDefault::test_fit_predict_sampling[CMDSTANPY]": SLOW_MCMC,
    "test_prophet.py::TestProphetFitPredictDefault::test_fit_predict_no_changepoints_mcmc[CMDSTANPY]": SLOW_MCMC,
    "test_prophet.py::TestProphetWarmStart::test_sampling_warm_start[CMDSTANPY]": MCMC,
    "test_prophet.py::TestProphetFitPredictDefault::test_fit_predict_large_numbers[CMDSTANPY-absmax]": LARGE_ABSMAX,
    "test_prophet.py::TestProphetFitPredictDefault::test_fit_predict_large_numbers[CMDSTANPY-minmax]": LARGE_MINMAX,
    # Builds every option combination, mcmc_samples=100 among them.
    "test_diagnostics.py::TestProphetCopy::test_prophet_copy[CMDSTANPY]": MCMC,
}
ALLOWED_REASONS = {MCMC, LBFGS, SLOW_MCMC, LARGE_ABSMAX, LARGE_MINMAX}
MIN_PASSING_TEST_PROPHET = 54
PROPHET_VERSION = "1.5."

# Module -> (import line in prophet's test, the line that replaces it).
IMPORTS = {
    "test_prophet.py": [
        ("from prophet import Prophet, diagnostics", "from anomaly import Prophet, diagnostics"),
        ("from prophet.utilities import warm_start_params", "from anomaly.forecast_interval.utilities import warm_start_params"),
    ],
    "test_diagnostics.py": [("from prophet import Prophet, diagnostics", "from anomaly import Prophet, diagnostics")],
    "test_metrics.py": [
        ("from prophet import metrics", "from anomaly import diagnostics as metrics"),
        ("from prophet.diagnostics import (", "from anomaly.diagnostics import ("),
    ],
    "test_serialize.py": [
        ("from prophet import Prophet", "from anomaly import Prophet"),
        ("from prophet.serialize import", "from anomaly.serialize import"),
    ],
    "test_utilities.py": [
        ("from prophet import Prophet", "from anomaly import Prophet"),
        ("from prophet.utilities import", "from anomaly.forecast_interval.utilities import"),
    ],
}
DATA = ["conftest.py", "data.csv", "data2.csv", "data3.csv", "serialized_model_v*.json"]


def _prophet_tests() -> Path:
    try:
        import prophet
    except ImportError:
        pytest.skip("prophet is not installed: pip install prophet==1.5 to run prophet's own tests against anomaly")
    if not prophet.__version__.startswith(PROPHET_VERSION):
        pytest.skip(f"prophet {prophet.__version__} is installed; EXPECTED_NOT_PASSING is for prophet {PROPHET_VERSION}'s tests")
    tests = Path(prophet.__file__).parent / "tests"
    if not (tests / "test_prophet.py").exists():
        pytest.skip(f"the installed prophet wheel ships no tests in {tests}")
    return tests


def _switch_imports(source: str, module: str) -> str:
    for old, new in IMPORTS[module]:
        if old not in source:
            raise AssertionError(f"{module}: prophet's import {old!r} is gone; update IMPORTS")
        source = source.replace(old, new)
    leftover = re.findall(r"^\s*(?:from prophet\b|import prophet\b).*$", source, flags=re.MULTILINE)
    assert not leftover, f"{module} still imports prophet: {leftover}"
    return source


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Test id -> passed / failed / error / skipped, from one pytest run over the switched modules."""
    source = _prophet_tests()
    work = tmp_path_factory.mktemp("prophet_peer")
    for pattern in DATA:
        for path in source.glob(pattern):
            shutil.copy(path, work / path.name)
    for module in IMPORTS:
        (work / module).write_text(_switch_imports((source / module).read_text(), module))
    (work / "pytest.ini").write_text("[pytest]\n")  # keep this repository's settings out
    report = work / "junit.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *IMPORTS],
        cwd=work, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if not report.exists():
        pytest.fail(f"prophet's tests did not run:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return _read_junit(report)


def _read_junit(report: Path) -> dict[str, str]:
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module, _, cls = case.get("classname", "").partition(".")
        test_id = "::".join([f"{module}.py", *([cls] if cls else []), case.get("name", "")])
        children = {child.tag for child in case}
        outcome = next((tag for tag in ("error", "failure", "skipped") if tag in children), "passed")
        outcomes[test_id] = {"failure": "failed"}.get(outcome, outcome)
    return outcomes


def test_list_is_well_formed() -> None:
    bad = {test: reason for test, reason in EXPECTED_NOT_PASSING.items() if reason not in ALLOWED_REASONS}
    assert not bad, f"only MCMC sampling and pins of where Stan stops may excuse a test: {bad}"
    print("\nprophet tests expected not to pass:")
    for test, reason in EXPECTED_NOT_PASSING.items():
        print(f"  {test}: {reason}")


def test_enough_of_test_prophet_passes(outcomes: dict[str, str]) -> None:
    ours = {t: o for t, o in outcomes.items() if t.startswith("test_prophet.py::")}
    passed = sum(o == "passed" for o in ours.values())
    print(f"\ntest_prophet.py: {passed} of {len(ours)} pass")
    assert passed >= MIN_PASSING_TEST_PROPHET, f"only {passed} of {len(ours)} of prophet's test_prophet.py pass"


def test_every_test_that_does_not_pass_is_listed(outcomes: dict[str, str]) -> None:
    unexpected = {t: o for t, o in outcomes.items() if o != "passed" and t not in EXPECTED_NOT_PASSING}
    assert not unexpected, f"prophet tests that do not pass and are not in EXPECTED_NOT_PASSING: {unexpected}"
    modules = {t.split("::")[0] for t in outcomes}
    assert modules == set(IMPORTS), f"modules that ran: {sorted(modules)}"


@pytest.mark.parametrize("test_id", sorted(EXPECTED_NOT_PASSING))
def test_listed_test_still_does_not_pass(outcomes: dict[str, str], test_id: str) -> None:
    assert test_id in outcomes, f"{test_id} no longer exists in prophet's tests: remove it from EXPECTED_NOT_PASSING"
    assert outcomes[test_id] != "passed", f"{test_id} passes now: remove it from EXPECTED_NOT_PASSING"
    pytest.xfail(EXPECTED_NOT_PASSING[test_id])
