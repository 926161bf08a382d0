"""``anomaly.utilities`` is :mod:`anomaly.forecast_interval.utilities` (a drop-in for
``prophet.utilities``), the same module object under a second name, as
:mod:`anomaly.diagnostics` is."""

import sys

from anomaly.forecast_interval import utilities as _module

sys.modules[__name__] = _module
