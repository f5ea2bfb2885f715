"""Generated PromQL for the differential test: every function, aggregation and operator, as data.

The queries run against ``differential_data``'s series: ``infer_service_request_total`` (counters
with resets), the guide's classic histograms (``*_bucket`` with ``le``, ``_sum``, ``_count``),
``ma_container_cpu_util`` (gauge with gaps and jittered times), ``weird`` (NaN, ±Inf, huge values)
and ``pod_up`` (ends in staleness markers, in Prometheus' head).
"""

from __future__ import annotations

from itertools import product

SVC = "6d26f238-52b0-4184-8b50-d621a0c80eb4"
SVC2 = "0b8e5a2f-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

COUNTER = "infer_service_request_total"
GAUGE = "ma_container_cpu_util"
SELECTORS = (COUNTER, f'{COUNTER}{{code="2xx"}}', GAUGE, "weird", "pod_up")

RANGE_FUNCS = (
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "changes",
    "resets",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "last_over_time",
    "present_over_time",
    "absent_over_time",
)
RANGE_FUNCS_WITH_ARGS = (
    "quantile_over_time(0.3, {m})",
    "quantile_over_time(1.5, {m})",
    "predict_linear({m}, 600)",
    "holt_winters({m}, 0.5, 0.3)",
)
INSTANT_FUNCS = (
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "sgn",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "deg",
    "rad",
    "timestamp",
    "sort",
    "sort_desc",
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
)
INSTANT_FUNCS_WITH_ARGS = (
    "clamp({m}, 10, 60)",
    "clamp({m}, 60, 10)",
    "clamp_min({m}, 40)",
    "clamp_max({m}, 40)",
    "round({m}, 5)",
    "round({m}, 0.3)",
    'label_replace({m}, "pod", "p-$1", "source", "pod-(.*)")',
    'label_replace({m}, "source", "x", "source", ".*")',
    'label_join({m}, "both", "/", "service_id", "source")',
    "scalar(sum({m}))",
    "vector(scalar({m}))",
    "absent({m})",
    'absent({m}{{nope="1"}})',
)
AGGREGATIONS = ("sum", "avg", "min", "max", "count", "stddev", "stdvar", "group")
AGGREGATIONS_WITH_PARAM = (
    "topk(2, {m})",
    "bottomk(3, {m})",
    "topk(2, {m}) by (service_id)",
    "bottomk(1, {m}) without (source)",
    "quantile(0.5, {m})",
    "quantile(0.9, {m}) by (service_id)",
    "quantile(-1, {m})",
    'count_values("v", round({m}))',
    'count_values("v", round({m})) by (service_id)',
)
ARITHMETIC = ("+", "-", "*", "/", "%", "^", "atan2")
COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")

GUIDE = (
    "histogram_quantile(0.90, avg(rate(infer_service_request_cost_bucket"
    f'{{service_id="{SVC}"}}[1m:30s]))by(le))',
    f'sum(increase(infer_service_first_token_cost_sum{{service_id="{SVC}"}}[59999ms]))by(service_id)'
    f'/sum(increase(infer_service_first_token_cost_count{{service_id="{SVC}"}}[59999ms]))by(service_id)',
    f'histogram_quantile(0.99,avg(rate(infer_service_first_token_cost_bucket{{service_id="{SVC}"}}[1m:30s]))by(le))',
    f'sum(increase(infer_service_per_token_cost_sum{{service_id="{SVC}"}}[59999ms]))by(service_id)'
    f'/sum(increase(infer_service_per_token_cost_count{{service_id="{SVC}"}}[59999ms]))by(service_id)',
    f'histogram_quantile(0.50,avg(rate(infer_service_per_token_cost_bucket{{service_id="{SVC}"}}[1m:30s]))by(le))',
    f'histogram_quantile(0.90,avg(rate(infer_service_input_token_quantity_bucket{{service_id="{SVC}"}}[1m:30s]))by(le))',
    f'histogram_quantile(0.90,avg(rate(infer_service_output_token_quantity_bucket{{service_id="{SVC}"}}[1m:30s]))by(le))',
    "infer_service_request_cost_sum / infer_service_request_cost_count",
    "infer_service_input_token_quantity_sum/infer_service_input_token_quantity_count",
    "infer_service_output_token_quantity_sum/infer_service_output_token_quantity_count",
)

HISTOGRAMS = (
    "histogram_quantile(0.99, sum by (le, service_id) (rate(infer_service_first_token_cost_bucket[5m])))",
    "histogram_quantile(0, sum by (le) (rate(infer_service_request_cost_bucket[5m])))",
    "histogram_quantile(1, sum by (le) (rate(infer_service_request_cost_bucket[5m])))",
    "histogram_quantile(-0.5, sum by (le) (rate(infer_service_request_cost_bucket[5m])))",
    "histogram_quantile(1.5, sum by (le) (rate(infer_service_request_cost_bucket[5m])))",
    "histogram_quantile(NaN, sum by (le) (rate(infer_service_request_cost_bucket[5m])))",
    "histogram_quantile(0.5, infer_service_request_cost_bucket)",
    'histogram_quantile(0.5, infer_service_request_cost_bucket{le!="+Inf"})',
    'histogram_quantile(0.5, sum by (le) (infer_service_request_cost_bucket{le=~"100|\\\\+Inf"}))',
    "histogram_quantile(0.75, rate(infer_service_first_token_cost_bucket[1m]))",
    "histogram_quantile(scalar(min(pod_up)) / 2, sum by (le) "
    "(rate(infer_service_per_token_cost_bucket[5m])))",
)

MATCHING = (
    f"{COUNTER} + on(service_id, source, code) {COUNTER}",
    f"{COUNTER} / ignoring(code) group_left sum without (code) ({COUNTER})",
    f"sum without (code) ({COUNTER}) / ignoring(code) group_right {COUNTER}",
    f"rate({COUNTER}[5m]) * on(service_id, source) group_left(service_name) {GAUGE}",
    f"{GAUGE} * on(source) group_right(code) {COUNTER}",
    f"{COUNTER} + on(service_id) {GAUGE}",  # many-to-many: an execution error in both
    f"{GAUGE} - on(service_id) group_left {COUNTER}",  # many on the "one" side: error
    f"{COUNTER} > on(service_id, source) group_left {GAUGE}",
    f"{GAUGE} > bool on(source) group_left pod_up",
    f"{COUNTER} and {COUNTER} > 100",
    f"{COUNTER} and on(service_id) {GAUGE} > 50",
    f"{COUNTER} or {GAUGE}",
    f"{GAUGE} or on(service_id) {COUNTER}",
    f'{COUNTER} unless {COUNTER}{{code="5xx"}}',
    f"{GAUGE} unless on(source) pod_up",
    f"{GAUGE} unless ignoring(source) {GAUGE}",
    "(weird > 0) or (weird < 0) or vector(7)",
    f'label_replace({GAUGE}, "source", "same", "source", ".*")',  # duplicate series → error
    f"{COUNTER} == bool {COUNTER}",
    f"-{GAUGE} * 2 + 1 - -3",
    f"sum({COUNTER}) by (code) / on() group_left scalar(sum({COUNTER}))",
)

TIME_SHIFTS = (
    f"{GAUGE} offset 10m",
    f"{GAUGE} offset -5m",
    f"rate({COUNTER}[5m] offset 2m)",
    f"{GAUGE} @ 1700000000",
    f"{GAUGE} @ start()",
    f"{GAUGE} @ end()",
    f"rate({COUNTER}[5m] @ end())",
    f"sum_over_time({GAUGE}[10m] @ 1700001000 offset 1m)",
    f"max_over_time(rate({COUNTER}[1m])[10m:])",
    f"max_over_time(rate({COUNTER}[1m])[10m:45s] offset 3m)",
    f"avg_over_time({GAUGE}[20m:2m] @ start())",
    f"rate(sum by (code) ({COUNTER})[5m:30s])",
    f"deriv(max({GAUGE})[15m:1m])",
    "time()",
    "time() - 1700000000",
    "pi()",
    "vector(time())",
    'scalar(pod_up{source="pod-0"})',
    "minute()",
    "year()",
)

PARSE_AND_TYPE_ERRORS = (
    "sum((",
    f"rate({GAUGE})",
    f"{GAUGE}[5m]",
    '"just a string"',
    "1 + ",
    "abs(1, 2)",
    f"{COUNTER} and 1",
    '{source="pod-0"}',
    "nosuch_function(up)",
)


def generate() -> list[str]:
    """All queries, deduplicated in order: ≥ 300 across the language."""
    queries: list[str] = []
    for func, sel, window in product(RANGE_FUNCS, SELECTORS, ("5m", "90s")):
        queries.append(f"{func}({sel}[{window}])")
    for template, sel in product(RANGE_FUNCS_WITH_ARGS, (GAUGE, COUNTER, "weird")):
        queries.append(template.format(m=f"{sel}[5m]"))
    for func in RANGE_FUNCS[:8]:
        queries.append(f"{func}({GAUGE}[10m:1m])")
    for func, sel in product(INSTANT_FUNCS, (GAUGE, "weird")):
        queries.append(f"{func}({sel})")
    for template, sel in product(INSTANT_FUNCS_WITH_ARGS, (GAUGE, "weird")):
        queries.append(template.format(m=sel))
    for agg in AGGREGATIONS:
        queries.append(f"{agg}({GAUGE})")
        queries.append(f"{agg} by (service_id) ({COUNTER})")
        queries.append(f"{agg} without (source) (weird)")
        queries.append(f"{agg}(rate({COUNTER}[5m])) by (code)")
    for template, sel in product(AGGREGATIONS_WITH_PARAM, (GAUGE, "weird")):
        queries.append(template.format(m=sel))
    for op in ARITHMETIC:
        queries.append(f"{GAUGE} {op} 3")
        queries.append(f"2 {op} weird")
        queries.append(f"{GAUGE} {op} on(service_id, source) weird")
    for op in COMPARISONS:
        queries.append(f"{GAUGE} {op} 50")
        queries.append(f"weird {op} bool 0")
        queries.append(f"{GAUGE} {op} ignoring(i, service_name) weird")
        queries.append(f"1 {op} bool 2")
    queries += [*GUIDE, *HISTOGRAMS, *MATCHING, *TIME_SHIFTS, *PARSE_AND_TYPE_ERRORS]
    return list(dict.fromkeys(queries))
