"""``anomaly.diagnostics`` is :mod:`anomaly.forecast_interval.diagnostics`.

The same module object under a second name, as ``prophet.diagnostics`` is one
module: code that patches ``diagnostics.single_cutoff_forecast`` or registers
a metric sees the same functions and registry whichever name it imported.
"""

import sys

from anomaly.forecast_interval import diagnostics as _module

sys.modules[__name__] = _module
