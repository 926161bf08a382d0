"""``anomaly.serialize`` is :mod:`anomaly.forecast_interval.serialize` (a drop-in for
``prophet.serialize``), the same module object under a second name, as
:mod:`anomaly.diagnostics` is."""

import sys

from anomaly.forecast_interval import serialize as _module

sys.modules[__name__] = _module
