"""The guide's series names (SEED-SPEC §1.2, T1-59) and identity labels (§1.3), written once.

The collector's engine adapters produce these names; dashboards and rules refer to them.
"""

from __future__ import annotations

# requests (T1-59 rows 1-3): counter with labels code ("2xx"/"4xx"/"5xx"), method, path
REQUEST_TOTAL = "infer_service_request_total"
REQUEST_CONNECT_COUNT = "infer_service_request_connect_count"
# histograms in milliseconds (rows 14-16) and tokens (rows 17-18): _bucket/_sum/_count
REQUEST_COST = "infer_service_request_cost"
FIRST_TOKEN_COST = "infer_service_first_token_cost"
PER_TOKEN_COST = "infer_service_per_token_cost"
INPUT_TOKEN_QUANTITY = "infer_service_input_token_quantity"
OUTPUT_TOKEN_QUANTITY = "infer_service_output_token_quantity"
# tokens generated (row 4)
TOKEN_COUNT = "infer_service_token_count"

HISTOGRAMS = (REQUEST_COST, FIRST_TOKEN_COST, PER_TOKEN_COST, INPUT_TOKEN_QUANTITY, OUTPUT_TOKEN_QUANTITY)

# identity labels put on every series the sidecar emits (T1-60/T1-61; role is ours, for PD roles)
SERVICE_ID = "service_id"
SERVICE_NAME = "service_name"
GROUP_ID = "group_id"
PROJECT_ID = "project_id"
INSTANCE_NAME = "instance_name"
SOURCE = "source"
ROLE = "role"
IDENTITY_LABELS = (SERVICE_ID, SERVICE_NAME, GROUP_ID, PROJECT_ID, INSTANCE_NAME, SOURCE, ROLE)
# put on a failed request's sketch observations (absent when it succeeded), so the OTLP export can
# set the GenAI conventions' ``error.type``; sketch reads merge over it, quantiles count every request
ERROR_TYPE = "error_type"

# scrape health, as Prometheus writes them per scrape, plus ours
UP = "up"
SCRAPE_DURATION_SECONDS = "scrape_duration_seconds"
SCRAPE_SAMPLES_SCRAPED = "scrape_samples_scraped"
SCRAPE_BODY_BYTES = "infersight_scrape_body_bytes"
SCRAPE_ERRORS_TOTAL = "infersight_scrape_errors_total"
TARGET_RESTARTS_TOTAL = "infersight_target_restarts_total"

# Engine figures beyond the guide's (infersight's names, the same for every engine that has them;
# docs/engines.md): per-request phase histograms in ms, KV-cache use 0..1, token and request counters
ENGINE_QUEUE_TIME = "infersight_engine_queue_time_ms"  # histogram: waiting before the first prefill
ENGINE_PREFILL_TIME = "infersight_engine_prefill_time_ms"  # histogram: in the prefill phase
ENGINE_DECODE_TIME = "infersight_engine_decode_time_ms"  # histogram: in the decode phase
ENGINE_KV_CACHE_USAGE = "infersight_engine_kv_cache_usage_ratio"  # gauge, 1 = full
ENGINE_PROMPT_TOKENS = "infersight_engine_prompt_tokens_total"  # counter: prompt tokens processed
ENGINE_PREFIX_CACHE_QUERIES = "infersight_engine_prefix_cache_queries_total"  # counter: tokens looked up
ENGINE_PREFIX_CACHE_HITS = "infersight_engine_prefix_cache_hits_total"  # counter: of them, found cached
ENGINE_PREEMPTIONS = "infersight_engine_preemptions_total"  # counter: requests preempted / retracted
ENGINE_REQUESTS_FINISHED = "infersight_engine_requests_finished_total"  # counter {finish_reason}
ENGINE_LORA_ADAPTERS = "infersight_engine_lora_adapters"  # gauge {state}: adapters in use
ENGINE_DECODE_MS_PER_TOKEN = "infersight_engine_decode_ms_per_token"  # gauge: per scrape interval
ENGINE_PREFILL_MS_PER_TOKEN = "infersight_engine_prefill_ms_per_token"  # gauge: per scrape interval
