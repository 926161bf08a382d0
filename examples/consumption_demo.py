"""The consumption rules from Python: flags, suspicious clients, monthly aggregates.

Run from the repository root after `pip install .`:

    python examples/consumption_demo.py
"""

from pathlib import Path

import pandas as pd

import anomaly

here = Path(__file__).parent
readings = pd.read_csv(here / "data" / "consumption_sample.csv", parse_dates=["timestamp"])

result = anomaly.consumption.analyze(readings)
flags, clients, monthly = result.readings, result.clients, result.monthly

print(f"{flags['is_anomaly'].sum()} of {len(flags)} readings flagged")
print(flags["severity"].value_counts().sort_index().to_string())
print("\nSuspicious clients:")
print(clients.loc[clients["suspicious"], ["client", "n_anomalies", "n_plantation", "n_flat", "n_critical", "max_score"]].to_string(index=False))
print("\nWorst months:")
print(monthly.sort_values("score", ascending=False).head(5)[["client", "year", "month", "total_kwh", "n_anomalies", "night_mean_kwh", "score"]].to_string(index=False))
