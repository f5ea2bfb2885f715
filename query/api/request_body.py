"""Request bodies decompressed within a bound: snappy (block format), gzip and deflate.

Why: a compressed body is small on the wire and may be huge once decoded (snappy expands up to
about 21 times, gzip over 1,000 times: a 50 MB body became 1 GiB in memory). The bound is checked
before the memory is taken: snappy's block format states its decoded length first, so that length
is read and refused past the bound before anything is allocated; gzip and deflate state nothing
trustworthy, so they are decoded as a stream that stops one byte past the bound.

    raw = decode_body(body, content_encoding, max_decoded_bytes=32 << 20)
    # ValueError: not what it claims to be (HTTP 400); BodyTooLargeError: past the bound (HTTP 413)
"""

from __future__ import annotations

import zlib

import cramjam

__all__ = ["DEFAULT_MAX_DECODED_BYTES", "BodyTooLargeError", "decode_body", "gunzip", "snappy_block"]

DEFAULT_MAX_DECODED_BYTES = 32 << 20
_STEP_BYTES = 1 << 20  # gzip/deflate decoded a MiB at a time


class BodyTooLargeError(ValueError):
    """The body decodes to more than the bound allows."""


def snappy_length(body: bytes) -> int:
    """The decoded length a snappy block states in its header (a varint of at most 32 bits)."""
    length, shift = 0, 0
    for position, byte in enumerate(body[:5]):
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            if length >= 1 << 32:
                break
            return length
        shift += 7
        if position == 4:
            break
    raise ValueError("snappy: no valid length header")


def snappy_block(body: bytes, max_bytes: int) -> bytes:
    """A snappy block-format body decoded, refused before allocation past ``max_bytes``."""
    length = snappy_length(body)
    if length > max_bytes:
        raise BodyTooLargeError(f"snappy body states {length} decoded bytes, over the limit of {max_bytes}")
    try:
        out = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as err:  # cramjam raises its own DecompressionError
        raise ValueError(f"snappy: {err}") from None
    if len(out) != length:  # cramjam checks it; a second look costs nothing
        raise ValueError(f"snappy: {len(out)} bytes decoded, header states {length}")
    return out


def gunzip(body: bytes, max_bytes: int, wbits: int) -> bytes:
    """A zlib-family stream (``wbits`` as ``zlib.decompressobj``) decoded to at most ``max_bytes``;
    ValueError if truncated, corrupt or followed by other bytes."""
    stream = zlib.decompressobj(wbits)
    parts: list[bytes] = []
    size = 0
    data = body
    try:
        while True:
            chunk = stream.decompress(data, min(_STEP_BYTES, max_bytes + 1 - size))
            size += len(chunk)
            parts.append(chunk)
            if size > max_bytes:
                raise BodyTooLargeError(f"body decodes to over {max_bytes} bytes")
            data = stream.unconsumed_tail
            if stream.eof or (not data and not chunk):
                break
    except zlib.error as err:
        raise ValueError(f"{_NAMES.get(wbits, 'deflate')}: {err}") from None
    if not stream.eof:
        raise ValueError(f"{_NAMES.get(wbits, 'deflate')}: truncated stream")
    if stream.unused_data:
        raise ValueError(f"{_NAMES.get(wbits, 'deflate')}: bytes after the end of the stream")
    return b"".join(parts)


_GZIP, _ZLIB, _RAW_DEFLATE = 16 + 15, 15, -15
_NAMES = {_GZIP: "gzip", _ZLIB: "deflate", _RAW_DEFLATE: "deflate"}


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int, default: str = "snappy") -> bytes:
    """``body`` as sent with ``Content-Encoding`` (None or empty: ``default``) decoded to at most
    ``max_bytes``: ``snappy`` (block format), ``gzip``/``x-gzip``, ``deflate`` (zlib-wrapped, or raw
    as some clients send it), ``identity``. Anything else is a ValueError."""
    encoding = (content_encoding or default).strip().lower()
    if encoding == "snappy":
        return snappy_block(body, max_bytes)
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, max_bytes, _GZIP)
    if encoding == "deflate":
        wrapped = len(body) >= 2 and (body[0] & 0x0F) == 8 and ((body[0] << 8) | body[1]) % 31 == 0
        return gunzip(body, max_bytes, _ZLIB if wrapped else _RAW_DEFLATE)
    if encoding == "identity":
        if len(body) > max_bytes:
            raise BodyTooLargeError(f"body of {len(body)} bytes, over the limit of {max_bytes}")
        return body
    raise ValueError(f"unsupported Content-Encoding {content_encoding!r} (snappy, gzip, deflate or identity)")
