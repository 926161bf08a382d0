"""anomaly: fast anomaly detection, written in Rust.

Domains (one module each):

- :mod:`anomaly.consumption`: rules that flag suspicious electricity
  consumption per client (outliers, spikes, night use, plantations, flat
  meters), with severities and monthly aggregates.

Every error raised is an :class:`AnomalyError`, a :class:`ValueError`
subclass; input errors carry ``.field`` and ``.row``.
"""

from anomaly import consumption, errors
from anomaly._anomaly import __version__
from anomaly.errors import *  # noqa: F403 - the exception classes

__all__ = [*errors.__all__, "__version__", "consumption"]
