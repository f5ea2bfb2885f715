"""Template variables: data source, the guide's drill-down chain, and the statistical period.

The chain follows the guide's hierarchy (project → service → deployment → instance → pod,
SEED-SPEC §1.6/§4.4): each variable lists the label values of ``up`` restricted by the variables
above it, so choosing a service narrows the deployments offered. ``up`` is used because every
target has it from its first scrape, whatever the engine exposes.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafanalib.core import Template

from dashboards.panels import DATASOURCE

# (variable name, label, display label): the guide's labels (T1-60/T1-61)
CHAIN: tuple[tuple[str, str, str], ...] = (
    ("project_id", "project_id", "Project"),
    ("service_id", "service_id", "Service"),
    ("group_id", "group_id", "Deployment"),
    ("instance", "instance_name", "Instance"),
    ("pod", "source", "Pod"),
)
# The console's statistical periods (§1.10.3): 1 min, 5 min, 15 min, 1 h.
PERIODS = ("1m", "5m", "15m", "1h")
CHAIN_METRIC = "up"


@dataclass(frozen=True, slots=True)
class Level:
    """How deep a dashboard's chain goes: ``depth`` variables of ``CHAIN``."""

    depth: int

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        """(label, variable) pairs for ``panels.selector``."""
        return tuple((label, name) for name, label, _ in CHAIN[: self.depth])


SERVICE = Level(2)
DEPLOYMENT = Level(4)
POD = Level(5)


def datasource_variable() -> Template:
    return Template(name="datasource", query="prometheus", type="datasource", label="Data source", default="")


def chain_variables(level: Level) -> list[Template]:
    """``label_values()`` variables, each restricted by the ones before it; "All" matches ``.*``."""
    variables = []
    for i, (name, label, title) in enumerate(CHAIN[: level.depth]):
        parents = ", ".join(f'{lab}=~"${var}"' for var, lab, _ in CHAIN[:i])
        metric = f"{CHAIN_METRIC}{{{parents}}}" if parents else CHAIN_METRIC
        variables.append(
            Template(
                name=name,
                label=title,
                query=f"label_values({metric}, {label})",
                dataSource=DATASOURCE,
                includeAll=True,
                allValue=".*",
                default="$__all",
                refresh=2,  # on time-range change: new services appear without a reload
            )
        )
    return variables


def period_variable() -> Template:
    """``$period``: the range of every ``rate``/``increase`` window."""
    return Template(
        name="period", label="Statistical period", query=",".join(PERIODS), type="custom", default="1m"
    )
