"""HTTP/1.1 on the wire for the proxy: message heads and body framings (RFC 9112), strict where it matters.

Both sides of the proxy parse with these (server.py: the clients' requests; upstream.py: the
engine's responses). They are strict where a lenient parser lets a request be smuggled past a
proxy: a header line must be ``token ":" value`` (no space before the colon, no obs-fold), values
carry no control characters, ``Content-Length`` is digits only (repeated: identical), the only
transfer coding accepted is ``chunked``, and a message with both framings is refused.
"""

from __future__ import annotations

import re

TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
MAX_HEAD_BYTES = 1 << 16  # the largest message head accepted
MAX_LINE_BYTES = 1 << 12  # the largest chunk-size or trailer line
MAX_CONTENT_LENGTH_DIGITS = 18

CHUNKED = -1  # body_length(): framed by chunked transfer coding
UNTIL_CLOSE = -2  # body_length(): a response body that ends when the connection does

Headers = list[tuple[bytes, bytes]]


class ProtocolError(Exception):
    """The peer spoke bad HTTP/1.1; ``status`` is the answer a server gives a client for it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_headers(lines: list[bytes]) -> Headers:
    """Header lines (without their CRLF) → ``[(name, value)]``, names as written, values trimmed."""
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not TOKEN.fullmatch(name):  # also a folded line or a space before the colon
            raise ProtocolError("malformed header line")
        value = value.strip(b" \t")
        if BAD_VALUE.search(value):
            raise ProtocolError("control character in a header value")
        headers.append((name, value))
    return headers


def parse_request_head(head: bytes) -> tuple[bytes, bytes, bytes, Headers]:
    """``method SP target SP version CRLF headers`` (the head without its final CRLF CRLF)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not TOKEN.fullmatch(parts[0]) or not parts[1] or BAD_VALUE.search(parts[1]):
        raise ProtocolError("malformed request line")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ProtocolError("unsupported HTTP version", 505)
    return method, target, version, parse_headers(lines[1:])


def parse_response_head(head: bytes) -> tuple[bytes, int, bytes, Headers]:
    """``version SP status SP reason CRLF headers`` → (version, status, reason, headers)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if (
        len(parts) < 2
        or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0")
        or not (len(parts[1]) == 3 and parts[1].isdigit())
    ):
        raise ProtocolError("malformed status line")
    reason = parts[2] if len(parts) == 3 else b""
    if BAD_VALUE.search(reason):
        raise ProtocolError("malformed status line")
    return parts[0], int(parts[1]), reason, parse_headers(lines[1:])


def body_length(headers: Headers, *, request: bool) -> int:
    """The body's framing: its length (>= 0), ``CHUNKED``, or ``UNTIL_CLOSE`` (responses only)."""
    coding: bytes | None = None
    length: int | None = None
    for name, value in headers:
        lname = name.lower()
        if lname == b"transfer-encoding":
            if coding is not None:
                raise ProtocolError("repeated transfer-encoding", 501)
            coding = value.lower()
        elif lname == b"content-length":
            if not value.isdigit() or len(value) > MAX_CONTENT_LENGTH_DIGITS:
                raise ProtocolError("malformed content-length")
            if length is not None and int(value) != length:
                raise ProtocolError("conflicting content-length")
            length = int(value)
    if coding is not None:
        if coding != b"chunked":
            raise ProtocolError("unsupported transfer-encoding", 501)
        if length is not None:
            raise ProtocolError("both content-length and transfer-encoding")
        return CHUNKED
    if length is not None:
        return length
    return 0 if request else UNTIL_CLOSE


def has_token(headers: Headers, name: bytes, token: bytes) -> bool:
    """Whether a comma-separated header (``connection``) lists ``token`` (both lower-case)."""
    return any(k.lower() == name and token in (t.strip() for t in v.lower().split(b",")) for k, v in headers)


_SIZE, _DATA, _CRLF, _TRAILER = range(4)


class ChunkedDecoder:
    """A chunked body decoded as it arrives, without holding it: ``feed`` gives the data at once.

    >>> d = ChunkedDecoder()
    >>> d.feed(b"5\\r\\nhello\\r\\n0\\r\\n\\r\\nNEXT")
    ([b'hello'], b'NEXT')
    """

    __slots__ = ("left", "line", "size", "state")

    def __init__(self) -> None:
        self.state = _SIZE
        self.left = 0  # data bytes of the current chunk still to come
        self.line = b""  # a size or trailer line split across reads
        self.size = 0  # data bytes decoded so far

    def feed(self, data: bytes) -> tuple[list[bytes], bytes | None]:
        """The data bytes in ``data``, and what follows the body once it has ended (else ``None``)."""
        out: list[bytes] = []
        if self.line:
            data, self.line = self.line + data, b""
        i, n = 0, len(data)
        while i < n:
            state = self.state
            if state == _DATA:
                take = self.left if self.left < n - i else n - i
                out.append(data if take == n else data[i : i + take])
                i += take
                self.left -= take
                if not self.left:
                    self.state = _CRLF
            elif state == _CRLF:
                if n - i < 2:
                    if data[i:] != b"\r":
                        raise ProtocolError("chunk data not followed by CRLF")
                    self.line = b"\r"
                    return out, None
                if data[i : i + 2] != b"\r\n":
                    raise ProtocolError("chunk data not followed by CRLF")
                i += 2
                self.state = _SIZE
            else:
                end = data.find(b"\r\n", i)
                if end < 0:
                    if n - i > MAX_LINE_BYTES:
                        raise ProtocolError("chunk line too long")
                    self.line = data[i:]
                    return out, None
                line = data[i:end]
                i = end + 2
                if state == _TRAILER:
                    if not line:  # the end of the body
                        self.state = -1
                        return out, data[i:]
                    continue  # trailer fields are dropped
                size = line.split(b";", 1)[0].rstrip(b" \t")
                if not HEX.fullmatch(size):
                    raise ProtocolError("malformed chunk size")
                self.left = int(size, 16)
                self.size += self.left
                self.state = _DATA if self.left else _TRAILER
        return out, None
