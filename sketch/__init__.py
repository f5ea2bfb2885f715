"""Mergeable streaming quantile sketches: OTel/Prometheus exponential histograms at a fixed scale.

Three nouns as in DataDog's sketches-py — mapping (value → bucket), store (sparse counts), sketch
(count/sum/min/max, merge, quantiles) — with the codec (ClickHouse columns, JSON, OTLP and
Prometheus native buckets) and batch (many windows in one numpy pass) apart. Pure: numpy only.
See docs/sketches.md for the error bound and how it differs from ``histogram_quantile``.
"""

from sketch.batch import merge_columns, quantiles_many, sketch_groups
from sketch.codec import (
    SketchColumns,
    from_columns,
    from_dict,
    from_otlp_buckets,
    to_columns,
    to_dict,
    to_native_spans,
    to_otlp_buckets,
)
from sketch.mapping import (
    DEFAULT_SCALE,
    ExponentialMapping,
    relative_error,
    scale_for_relative_error,
)
from sketch.sketch import ExponentialHistogram
from sketch.store import SparseStore

__all__ = [
    "DEFAULT_SCALE",
    "ExponentialHistogram",
    "ExponentialMapping",
    "SketchColumns",
    "SparseStore",
    "from_columns",
    "from_dict",
    "from_otlp_buckets",
    "merge_columns",
    "quantiles_many",
    "relative_error",
    "scale_for_relative_error",
    "sketch_groups",
    "to_columns",
    "to_dict",
    "to_native_spans",
    "to_otlp_buckets",
]
