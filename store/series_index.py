"""Every series of a chDB store in memory, kept current by its one writer: label matchers resolved
without SQL.

Why: a panel query first finds its series, and in chDB that is a GROUP BY over the ``series`` table
with the matchers' regexes: about 4 ms per selector whatever it returns, paid again by every
dashboard nobody opened yet, and by every dashboard after any new series appeared (a new pod, a
new day). Twenty people opening twenty services' dashboards spent most of the server's CPU there
(``docs/promql.md``). Prometheus and VictoriaMetrics answer from an inverted index in memory; so
does this one: per label, per value, the series carrying it.

What it guarantees: ``find(matchers, first_day, last_day)`` returns exactly what the SQL over the
``series`` table returns (the series seen on a day in the range whose labels all matchers accept,
a missing label reading as ""), because it holds exactly that table: loaded from it when the store
opens, then given every ``series`` insert the backend completes. Any other statement (DDL,
dropped partitions, mutations) may change the table in ways rows cannot tell, so it marks the
index stale, and the next look-up reads the table again; until that is done look-ups answer None
and the caller asks SQL. Past ``max_series`` it stops holding anything (None, always) rather than
grow without bound; a later reload that fits takes up again.

Only where this process is the store's one writer (chDB): a ClickHouse server may take series
from other servers, which this memory would not see.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable
from typing import Any

import pyarrow as pa
from loguru import logger

from model.labels import METRIC_NAME, Matcher, MatchOp
from store.table_mirror import TableMirror

DEFAULT_MAX_SERIES = 500_000  # about 1.5 kB each with its postings: ~750 MB at most
# Work one look-up may do while it holds the index (and so keeps the writer waiting): a regex is
# tried on at most this many distinct values of its label, else checked series by series; and past
# this many candidate series the look-up is left to SQL, which works outside this process's lock.
MAX_VALUES_TRIED = 10_000
MAX_CANDIDATES = 50_000


class _Tables:
    """One consistent generation of the index (swapped whole on reload)."""

    __slots__ = ("days", "labels", "postings")

    def __init__(self) -> None:
        self.labels: dict[int, dict[str, str]] = {}  # fingerprint → label set, with __name__
        # fingerprint → days seen, as [first, last, first, last, ...] runs in rising order
        self.days: dict[int, list[int]] = {}
        self.postings: dict[str, dict[str, set[int]]] = {}  # label → value → fingerprints

    def add(self, fp: int, day: int, name: str, names: Iterable[str], values: Iterable[str]) -> None:
        runs = self.days.get(fp)
        if runs is None:
            labels = {sys.intern(k): sys.intern(v) for k, v in zip(names, values, strict=True)}
            labels[METRIC_NAME] = sys.intern(name)
            self.labels[fp] = labels
            self.days[fp] = [day, day]
            for key, value in labels.items():
                self.postings.setdefault(key, {}).setdefault(value, set()).add(fp)
            return
        _add_day(runs, day)


def _add_day(runs: list[int], day: int) -> None:
    """``day`` into rising, disjoint [first, last] runs; neighbours merge."""
    if runs[-1] + 1 == day:  # the usual case: the next day of a live series
        runs[-1] = day
        return
    for i in range(0, len(runs), 2):
        first, last = runs[i], runs[i + 1]
        if first <= day <= last:
            return
        if day == first - 1:
            runs[i] = day
            if i and runs[i - 1] + 1 == day:  # now touches the run before
                runs[i - 1 : i + 1] = []
            return
        if day == last + 1:
            runs[i + 1] = day
            if i + 2 < len(runs) and runs[i + 2] - 1 == day:  # now touches the run after
                runs[i + 1 : i + 3] = []
            return
        if day < first:
            runs[i:i] = [day, day]
            return
    runs += [day, day]


def _seen_between(runs: list[int], first_day: int, last_day: int) -> bool:
    return any(runs[i] <= last_day and runs[i + 1] >= first_day for i in range(0, len(runs), 2))


class SeriesIndex:
    """``find``/``label_names``/``label_values`` over the store's series, or None: ask SQL."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES) -> None:
        self.max_series = max_series
        self._mirror: TableMirror[_Tables] = TableMirror("series index", self._read, self._feed)

    # -- kept current (``store.table_mirror``) ------------------------------------------------------

    def load(self, backend: Any) -> None:
        """Read the whole ``series`` table; from then on look-ups may come here."""
        self._mirror.load(backend)

    def _read(self, backend: Any) -> _Tables | None:
        db = backend.database
        count = backend.query(f"SELECT uniqExact(fingerprint) AS n FROM {db}.series").column(0)[0].as_py()
        if count > self.max_series:
            logger.warning(
                "series index: {} series, more than the {} kept in memory; series look-ups use SQL",
                count,
                self.max_series,
            )
            return None
        table = backend.query(
            f"SELECT fingerprint, any(metric_name) AS name, any(label_names) AS names, "
            f"any(label_values) AS vals, groupUniqArray(toUInt32(day)) AS days "
            f"FROM {db}.series GROUP BY fingerprint"
        )
        tables = _Tables()
        if table.num_rows:
            columns = (table.column(i).to_pylist() for i in range(5))
            for fp, name, names, values, days in zip(*columns, strict=True):
                for day in sorted(days):
                    tables.add(fp, day, name, names, values)
        logger.info("series index: {} series loaded", len(tables.labels))
        return tables

    def _feed(self, tables: _Tables, rows: pa.Table) -> bool:
        _add_rows(tables, rows)
        if len(tables.labels) > self.max_series:
            logger.warning("series index: past {} series; series look-ups use SQL", self.max_series)
            return False
        return True

    def add(self, rows: pa.Table) -> None:
        """Rows the backend has just stored in ``series`` (day, metric_name, fingerprint, label_names,
        label_values)."""
        self._mirror.add(rows)

    def mark_stale(self) -> None:
        """The table may have changed in ways its rows do not tell (a statement ran): read it again."""
        self._mirror.mark_stale()

    # -- read -----------------------------------------------------------------------------------

    def find(
        self, matchers: list[Matcher], first_day: int, last_day: int
    ) -> dict[int, dict[str, str]] | None:
        """Label sets of the series matching all ``matchers``, seen on a day in the range; callers
        must not change them. None: not known here."""
        if self._mirror.current() is None:
            return None
        with self._mirror.lock:
            tables = self._mirror.value
            if tables is None:
                return None
            out: dict[int, dict[str, str]] = {}
            labels_of, days_of = tables.labels, tables.days
            tests = [(m.name, _test(m)) for m in matchers]
            candidates = _candidates(tables, matchers)
            if len(candidates) > MAX_CANDIDATES:
                return None
            for fp in candidates:
                labels = labels_of[fp]
                if _seen_between(days_of[fp], first_day, last_day) and all(
                    test(labels.get(name, "")) for name, test in tests
                ):
                    out[fp] = labels
            return out

    def label_names(self, matchers: list[Matcher], first_day: int, last_day: int) -> list[str] | None:
        found = self.find(matchers, first_day, last_day)
        if found is None:
            return None
        names = {name for labels in found.values() for name in labels}
        return sorted(names)

    def label_values(
        self, name: str, matchers: list[Matcher], first_day: int, last_day: int
    ) -> list[str] | None:
        found = self.find(matchers, first_day, last_day)
        if found is None:
            return None
        return sorted({v for labels in found.values() if (v := labels.get(name, ""))})


def _add_rows(tables: _Tables, rows: pa.Table) -> None:
    days = rows.column("day").cast(pa.int32()).to_pylist()
    columns = (
        rows.column(c).to_pylist() for c in ("fingerprint", "metric_name", "label_names", "label_values")
    )
    for day, (fp, name, names, values) in zip(days, zip(*columns, strict=True), strict=True):
        tables.add(fp, day, name, names, values)


def _test(m: Matcher) -> Callable[[str], bool]:
    """``m.matches``, with a regex's answer kept per value: one look-up walks many series that share
    a few values, and a call into RE2 costs microseconds."""
    if m.op is MatchOp.EQ:
        return m.value.__eq__
    if m.op is MatchOp.NE:
        return m.value.__ne__
    known: dict[str, bool] = {}

    def test(value: str) -> bool:
        hit = known.get(value)
        if hit is None:
            hit = known[value] = m.matches(value)
        return hit

    return test


_META = frozenset("\\.+*?()|[]{}^$")


def _literal_alternatives(pattern: str) -> list[str] | None:
    """The strings a regex of plain alternatives matches (``a|b``, ``(a|b)``, ``a\\.b``: what
    Grafana's multi-value variables send), or None for anything else."""
    if (
        pattern.startswith("(")
        and pattern.endswith(")")
        and "(" not in pattern[1:-1]
        and ")" not in pattern[1:-1]
    ):
        pattern = pattern[1:-1]
    out, current, i = [], [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            current.append(pattern[i + 1])  # an escaped punctuation mark stands for itself
            i += 2
            continue
        if ch == "|":
            out.append("".join(current))
            current = []
        elif ch in _META:
            return None
        else:
            current.append(ch)
        i += 1
    out.append("".join(current))
    return out


def _postings(m: Matcher, values: dict[str, set[int]]) -> set[int]:
    """Series whose ``m.name`` has a value ``m`` accepts (a superset for none: ``m`` rejects "")."""
    if m.op is MatchOp.EQ:
        return values.get(m.value, _NONE)
    if m.op is MatchOp.RE and (alternatives := _literal_alternatives(m.value)) is not None:
        return set().union(*(values.get(v, _NONE) for v in alternatives))
    return set().union(*(fps for value, fps in values.items() if m.matches(value)))


_NONE: set[int] = set()


def _candidates(tables: _Tables, matchers: list[Matcher]) -> Collection[int]:
    """A superset of the matching series, from the postings of the matchers that exclude series
    lacking their label (those that do not accept ""); all series when none does."""
    restricting = [m for m in matchers if not m.matches("")]
    if any(not tables.postings.get(m.name) for m in restricting):
        return ()  # a label no series has, required non-empty
    restricting = [
        m
        for m in restricting
        if m.op is MatchOp.EQ
        or len(tables.postings[m.name]) <= MAX_VALUES_TRIED
        or (m.op is MatchOp.RE and _literal_alternatives(m.value) is not None)
    ]
    # Cheapest first: equality is one look-up; a regex is tried on each of its label's values.
    restricting.sort(key=lambda m: (m.op is not MatchOp.EQ, len(tables.postings[m.name])))
    chosen: set[int] | None = None
    for m in restricting:
        if chosen is not None and len(chosen) <= 64 and m.op is not MatchOp.EQ:
            break  # few enough to check one by one: cheaper than walking this label's values
        found = _postings(m, tables.postings[m.name])
        chosen = found if chosen is None else (chosen & found if len(chosen) > len(found) else found & chosen)
        if not chosen:
            return ()
    return tables.labels if chosen is None else chosen
