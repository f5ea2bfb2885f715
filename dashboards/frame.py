"""The frame every infersight dashboard shares: variables, time range, refresh, links, tags.

The console's defaults (SEED-SPEC §1.5): the last 15 minutes, statistics updated every minute,
spans up to 15 days.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Template, Templating, Time, TimePicker

from dashboards.panels import Row, layout
from dashboards.variables import Level, chain_variables, datasource_variable, period_variable

TIME_OPTIONS = ["15m", "1h", "3h", "12h", "24h", "2d", "7d", "15d"]
REFRESH_INTERVALS = ["1m", "5m", "15m", "1h"]


def dashboard(
    title: str,
    uid: str,
    description: str,
    rows: list[Row],
    level: Level,
    extra_variables: tuple[Template, ...] = (),
) -> Dashboard:
    """A dashboard with the chain down to ``level``, ``$period``, and ``rows`` laid out."""
    variables = [datasource_variable(), *chain_variables(level), *extra_variables, period_variable()]
    return Dashboard(
        title=title,
        uid=uid,
        description=description,
        tags=["infersight", "inference"],
        panels=layout(rows),
        templating=Templating(list=variables),
        time=Time("now-15m", "now"),
        timePicker=TimePicker(refreshIntervals=REFRESH_INTERVALS, timeOptions=TIME_OPTIONS),
        refresh="1m",
        schemaVersion=39,
        timezone="browser",
    ).auto_panel_ids()
