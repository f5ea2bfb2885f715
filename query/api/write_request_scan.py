"""One compiled pass (numba) over a decompressed remote-write ``WriteRequest``'s bytes.

Why: at the batch sizes senders use (Prometheus sends at most 2,000 samples per request by default)
a request's cost was mostly Python work per series: splitting the message, stepping every series'
records with numpy, then decoding samples by layout. This walks the protobuf wire format once, as
the protobuf runtime would, and hands back per series where its Label records lie (the key of the
label-set cache, ``remote_write._label_sets``) and per sample its series, timestamp and value.

Wire format (prometheus/prompb): ``WriteRequest{1: TimeSeries*}``, ``TimeSeries{1: Label*,
2: Sample*}`` and ``Sample{1: double value, 2: int64 timestamp}``; other fields (metadata, exemplars,
histograms) are skipped by wire type, as a parser that does not know them does. A negative result
means "not the usual layout or not valid": the caller then asks the protobuf parser, which decides
(and names the error).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MALFORMED = -1  # truncated, a varint over 10 bytes, an unknown wire type, a wrong wire type
SCATTERED_LABELS = -2  # a series' Label records are not one run (the cache key needs one)
TOO_MANY_SERIES = -3  # more series than the output arrays hold (the caller's cap)
TOO_MANY_SAMPLES = -4  # more samples than the output arrays hold


class OverLimitError(ValueError):
    """The message holds more series or samples (``kind``) than ``limit``; counting stopped there."""

    def __init__(self, kind: str, limit: int) -> None:
        super().__init__(f"over {limit} {kind}")
        self.kind = kind
        self.limit = limit


@numba.njit(cache=True, nogil=True)
def _varint(data: np.ndarray, p: int, end: int) -> tuple[int, int]:
    """(value as uint64 bits in an int64, next position); next position -1 if malformed."""
    result = np.uint64(0)
    shift = 0
    while p < end and shift < 70:
        byte = data[np.uint64(p)]  # unsigned: no negative-index wraparound to check
        p += 1
        result |= np.uint64(byte & 0x7F) << np.uint64(shift)
        if byte < 0x80:
            return np.int64(result), p
        shift += 7
    return 0, -1


@numba.njit(cache=True, nogil=True, inline="always")
def word(data: np.ndarray, p: int) -> np.uint64:
    """Eight bytes at ``p`` as a little-endian word. Unsigned indexes: with no negative-index
    wraparound to check, LLVM turns the eight loads into one (about ten times faster)."""
    q = np.uint64(p)
    out = np.uint64(0)
    for j in range(8):
        out |= np.uint64(data[q + np.uint64(j)]) << np.uint64(8 * j)
    return out


@numba.njit(cache=True, nogil=True)
def _skip(data: np.ndarray, p: int, end: int, wire: int) -> int:
    """Position after a field of ``wire`` type starting at ``p`` (its key already read); -1 if bad."""
    if wire == 0:
        return _varint(data, p, end)[1]
    if wire == 1:
        return p + 8 if p + 8 <= end else -1
    if wire == 2:
        size, q = _varint(data, p, end)
        if q < 0 or size < 0 or q + size > end:
            return -1
        return q + size
    if wire == 5:
        return p + 4 if p + 4 <= end else -1
    return -1


@numba.njit(cache=True, nogil=True)
def _scan(
    data: np.ndarray,
    label_from: IntArray,
    label_to: IntArray,
    owner: IntArray,
    ts: IntArray,
    values: FloatArray,
    bits: np.ndarray,
    as_float: FloatArray,
) -> tuple[int, int]:
    """(series, samples) written into the output arrays, or (MALFORMED/SCATTERED_LABELS/TOO_MANY_*, 0):
    the walk stops as soon as a series or sample would not fit (the caller sized them to its caps)."""
    end = len(data)
    p = 0
    n_series = 0
    n_samples = 0
    while p < end:
        key, p = _varint(data, p, end)
        if p < 0:
            return MALFORMED, 0
        field, wire = key >> 3, key & 7
        if field != 1:
            p = _skip(data, p, end, wire)
            if p < 0:
                return MALFORMED, 0
            continue
        if wire != 2:
            return MALFORMED, 0
        if n_series >= len(label_from):
            return TOO_MANY_SERIES, 0
        size, p = _varint(data, p, end)
        if p < 0 or size < 0 or p + size > end:
            return MALFORMED, 0
        series_end = p + size
        first, last, closed = -1, -1, False  # the run of Label records; closed once something follows
        while p < series_end:
            start = p
            key, p = _varint(data, p, series_end)
            if p < 0:
                return MALFORMED, 0
            field, wire = key >> 3, key & 7
            if field == 1 and wire == 2:
                if closed:
                    return SCATTERED_LABELS, 0
                p = _skip(data, p, series_end, 2)
                if p < 0:
                    return MALFORMED, 0
                if first < 0:
                    first = start
                last = p
                continue
            if first >= 0:
                closed = True
            if field == 2 and wire == 2:
                size, p = _varint(data, p, series_end)
                if p < 0 or size < 0 or p + size > series_end:
                    return MALFORMED, 0
                sample_end = p + size
                if n_samples >= len(owner):
                    return TOO_MANY_SAMPLES, 0
                stamp, value = 0, 0.0
                while p < sample_end:
                    key, p = _varint(data, p, sample_end)
                    if p < 0:
                        return MALFORMED, 0
                    field, wire = key >> 3, key & 7
                    if field == 1 and wire == 1:
                        if p + 8 > sample_end:
                            return MALFORMED, 0
                        bits[0] = word(data, p)
                        value = as_float[0]
                        p += 8
                    elif field == 2 and wire == 0:
                        stamp, p = _varint(data, p, sample_end)
                        if p < 0:
                            return MALFORMED, 0
                    else:
                        p = _skip(data, p, sample_end, wire)
                        if p < 0:
                            return MALFORMED, 0
                owner[n_samples] = n_series
                ts[n_samples] = stamp
                values[n_samples] = value
                n_samples += 1
            else:
                p = _skip(data, p, series_end, wire)
                if p < 0:
                    return MALFORMED, 0
        label_from[n_series] = first if first >= 0 else 0
        label_to[n_series] = last if first >= 0 else 0
        n_series += 1
    return n_series, n_samples


def scan_write_request(
    raw: bytes, max_series: int | None = None, max_samples: int | None = None
) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray] | None:
    """Per series ``raw[label_from[i]:label_to[i]]`` (its Label records), per sample its series,
    timestamp and value; None where the protobuf parser must decide (see the module docstring).
    ``OverLimitError`` past ``max_series`` or ``max_samples`` (None: no cap): arrays are sized to
    the caps, so an oversized message costs no more memory than a request at the cap."""
    data = np.frombuffer(raw, np.uint8)
    cap = len(raw) // 2 + 1  # every TimeSeries and every Sample record takes at least 2 bytes
    series_cap = cap if max_series is None else min(cap, max_series)
    samples_cap = cap if max_samples is None else min(cap, max_samples)
    label_from = np.empty(series_cap, np.int64)
    label_to = np.empty(series_cap, np.int64)
    owner = np.empty(samples_cap, np.int64)
    ts = np.empty(samples_cap, np.int64)
    values = np.empty(samples_cap, np.float64)
    bits = np.zeros(1, np.uint64)
    n_series, n_samples = _scan(data, label_from, label_to, owner, ts, values, bits, bits.view(np.float64))
    if n_series == TOO_MANY_SERIES:
        raise OverLimitError("series", series_cap)
    if n_series == TOO_MANY_SAMPLES:
        raise OverLimitError("samples", samples_cap)
    if n_series < 0:
        return None
    return (
        label_from[:n_series],
        label_to[:n_series],
        owner[:n_samples],
        ts[:n_samples].copy(),
        values[:n_samples].copy(),
    )


def warm() -> None:
    """Load (or compile) the walk now, not inside the first request's time (0.2 s cached, 1 s not)."""
    scan_write_request(b"")
