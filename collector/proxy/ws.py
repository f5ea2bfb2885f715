"""WebSocket passthrough: after the upstream's 101 the proxy relays bytes; this counts the messages in them.

The guide's services speak WS/WSS too (T1-2, Appendix A). The proxy forwards the upgrade request
as it came (with its ``Upgrade``/``Connection`` headers); when the upstream answers 101, the
answer goes to the client and both connections become one byte tunnel (server.py), so frames,
extensions (permessage-deflate) and close codes pass unchanged; an upstream that refuses the
upgrade answers the client itself (its own status and body). WebSocket messages are not timed
(they are not request/response) but counted per direction: ``FrameCounter`` reads the frame
headers (RFC 6455 §5.2) in the stream as it passes, without unmasking or holding any payload, and
counts a message at each final data frame (control frames — ping, pong, close — are not messages).
"""

from __future__ import annotations

_NEED = {126: 2, 127: 8}  # extended payload length bytes


class FrameCounter:
    """WebSocket messages completed in a byte stream, fed in pieces as they pass.

    >>> counter = FrameCounter()
    >>> counter.feed(b"\\x81\\x05hello\\x82\\x02")   # a text message, the start of a binary one
    1
    """

    __slots__ = ("head", "skip")

    def __init__(self) -> None:
        self.head = b""  # the start of a frame header split across pieces
        self.skip = 0  # payload bytes of the current frame still to pass

    def feed(self, data: bytes) -> int:
        """How many messages ``data`` completes (a message counts when its final frame's header passes)."""
        messages = 0
        i, n = 0, len(data)
        while True:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                if self.skip:
                    return messages
            if i >= n:
                return messages
            head = self.head + data[i : i + 14] if self.head else data[i : i + 14]
            if len(head) < 2:
                self.head = head
                return messages
            length = head[1] & 0x7F
            size = 2 + _NEED.get(length, 0) + (4 if head[1] & 0x80 else 0)
            if len(head) < size:  # the piece ended inside the header
                self.head = head
                return messages
            if length == 126:
                length = int.from_bytes(head[2:4], "big")
            elif length == 127:
                length = int.from_bytes(head[2:10], "big")
            if head[0] & 0x80 and not head[0] & 0x08:  # FIN, and a data frame (opcode 0-7)
                messages += 1
            i += size - len(self.head)
            self.head = b""
            self.skip = length
