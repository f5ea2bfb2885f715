"""Service dashboard rows for SLOs, prefill/decode roles and cost per token (docs/slo.md).

- SLOs: attainment and error budget left over the dashboard's time range, goodput (requests per
  second that met every target), burn rate and target misses per statistical period. They read
  the proxy's exact counters (``infersight_slo_*``), one line per SLO of the service.
- Roles: TTFT, TPOT, request rate and the engines' queue / prefill / decode phase times split by
  the ``role`` label (prefill, decode, or the router whose proxy sees what the client sees).
- Cost: the pods' configured price (``infersight_cost_total``) over the tokens they served.
"""

from __future__ import annotations

from dashboards.panels import PanelSpec, Query, Row

SLO_REQUESTS = "infersight_slo_requests_total"


def _ratio(sel: str, result: str, window: str, by: str = "slo") -> str:
    return (
        f'sum by ({by}) (increase({SLO_REQUESTS}{{{sel}, result="{result}"}}[{window}]))'
        f" / sum by ({by}) (increase({SLO_REQUESTS}{{{sel}}}[{window}]))"
    )


def _budget(sel: str) -> str:
    return f"(1 - max by (slo) (infersight_slo_objective{{{sel}}}))"


def slo_row(sel: str) -> Row:
    good = f'{SLO_REQUESTS}{{{sel}, result="good"}}'
    return Row(
        "SLOs",
        (
            PanelSpec(
                "SLO attainment",
                (Query(_ratio(sel, "good", "$__range"), "{{slo}}"),),
                "percentunit",
                "Good requests / all requests judged by the SLO over the dashboard's time range, counted "
                "exactly per request by the ingress proxy (a request is good when it met every target of "
                "its SLO). Set the range to the SLO's period (e.g. 28 days) to read it against the "
                "objective.",
                width=6,
            ),
            PanelSpec(
                "Goodput",
                (
                    Query(f"sum by (slo) (rate({good}[$period]))", "{{slo}} goodput"),
                    Query(f"sum by (slo) (rate({SLO_REQUESTS}{{{sel}}}[$period]))", "{{slo}} judged"),
                ),
                "reqps",
                "Requests per second that met every latency target of the SLO (and did not fail in an "
                "error class it counts as bad), beside all requests the SLO judged.",
                width=6,
            ),
            PanelSpec(
                "Error budget left",
                (Query(f"1 - ({_ratio(sel, 'bad', '$__range')}) / {_budget(sel)}", "{{slo}}"),),
                "percentunit",
                "1 - (bad share over the time range) / (1 - objective): 100 % is an untouched budget, "
                "0 % or below is spent. Read it over the SLO's period.",
                ((0.0, "red"),),
                width=6,
            ),
            PanelSpec(
                "Burn rate",
                (Query(f"({_ratio(sel, 'bad', '$period')}) / {_budget(sel)}", "{{slo}}"),),
                "short",
                "Bad share in the statistical period divided by the error budget: at 1 the budget lasts "
                "exactly the SLO's period. The burn-rate alerts page at 14.4 (1 h) and 6 (6 h), ticket at "
                "3 (1 d) and 1 (3 d), windows scaled to the SLO's period.",
                ((1.0, "orange"), (14.4, "red")),
                width=6,
            ),
            PanelSpec(
                "SLO target misses",
                (
                    Query(
                        "sum by (slo, target) "
                        f"(increase(infersight_slo_target_misses_total{{{sel}}}[$period]))",
                        "{{slo}} {{target}}",
                    ),
                ),
                "short",
                "Requests that missed each target in the statistical period (ttft, tpot, cost; error: "
                "ended in an error class the SLO counts as bad). One request can miss several.",
                width=24,
            ),
        ),
    )


def _phase(sel: str, phase: str) -> Query:
    name = f"vllm:request_{phase}_time_seconds"
    return Query(
        f"1000 * sum by (role) (increase({name}_sum{{{sel}}}[$period]))"
        f" / sum by (role) (increase({name}_count{{{sel}}}[$period]))",
        f"{{{{role}}}} {phase}",
    )


def _quantile_by_role(histogram: str, sel: str, q: float = 0.9) -> Query:
    return Query(
        f"histogram_quantile({q}, sum by (role, le) (rate({histogram}_bucket{{{sel}}}[$period])))",
        "{{role}}",
    )


def role_row(sel: str) -> Row:
    return Row(
        "Prefill / decode roles",
        (
            PanelSpec(
                "TTFT TP90 by role",
                (_quantile_by_role("infer_service_first_token_cost", sel),),
                "ms",
                "Time to first token per role. The router's (its sidecar proxy in front of the router) is "
                "what the client sees across prefill and decode pods; a pod's is its own part.",
            ),
            PanelSpec(
                "TPOT TP90 by role",
                (_quantile_by_role("infer_service_per_token_cost", sel),),
                "ms",
                "Per-token latency after the first token, per role.",
            ),
            PanelSpec(
                "Requests by role",
                (Query(f"sum by (role) (rate(infer_service_request_total{{{sel}}}[$period]))", "{{role}}"),),
                "reqps",
                "Request rate each role handles.",
            ),
            PanelSpec(
                "Queue, prefill and decode time by role",
                tuple(_phase(sel, phase) for phase in ("queue", "prefill", "decode")),
                "ms",
                "The engine's own phase times per request, averaged in the period (vLLM's "
                "vllm:request_{queue,prefill,decode}_time_seconds): where a request waits, computes its "
                "prompt and generates. KV transfer times appear under the engine's own names where its "
                "connector exposes them.",
            ),
        ),
    )


def cost_row(sel: str) -> Row:
    cost = f"sum by (currency) (increase(infersight_cost_total{{{sel}}}[$period]))"

    def tokens(kind: str) -> str:
        return f"sum(increase(infer_service_{kind}_token_quantity_sum{{{sel}}}[$period]))"

    return Row(
        "Cost",
        (
            PanelSpec(
                "Cost per 1,000 tokens",
                (
                    Query(
                        f"1000 * {cost} / on() group_left() ({tokens('input')} + {tokens('output')})",
                        "per 1k tokens (input + output) {{currency}}",
                    ),
                    Query(
                        f"1000 * {cost} / on() group_left() {tokens('output')}",
                        "per 1k output tokens {{currency}}",
                    ),
                    Query(
                        f"1000 * {cost} / on() group_left() {tokens('input')}",
                        "per 1k input tokens {{currency}}",
                    ),
                ),
                "short",
                "The pods' configured price (per pod-hour or accelerator-hour, the sidecar's cost section) "
                "in the period over the tokens served in it. Each line charges the whole cost to the tokens "
                "it names; a disaggregated deployment charges prefill pods to input and decode pods to "
                "output tokens (docs/slo.md).",
            ),
            PanelSpec(
                "Cost per hour",
                (
                    Query(
                        f"3600 * sum by (currency) (rate(infersight_cost_total{{{sel}}}[$period]))",
                        "{{currency}}",
                    ),
                ),
                "short",
                "What the selected pods cost per hour at their configured price.",
            ),
        ),
    )
