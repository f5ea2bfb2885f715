"""Network bytes received and sent, from /proc/net/dev (the reader's network namespace).

Inside a pod, /proc/net/dev lists the pod's own interfaces (the sidecar shares the pod's network
namespace), so the sum over them is the pod's traffic. Loopback is left out by default: traffic
between the sidecar and the engine on 127.0.0.1 is not the service's network throughput.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InterfaceBytes:
    """Cumulative counters of one interface."""

    name: str
    rx_bytes: int
    tx_bytes: int


def parse_net_dev(text: str) -> list[InterfaceBytes]:
    """Rows of /proc/net/dev; counters may be glued to the colon (``eth0:68210035552``) and a
    name may hold a colon (an alias such as ``ibr10:30``), so the *last* colon splits."""
    out = []
    for line in text.splitlines():
        if "|" in line or ":" not in line:
            continue  # the two header lines
        name, _, counters = line.rpartition(":")
        fields = counters.split()
        if len(fields) < 9 or not all(f.isdigit() for f in fields[:9]):
            continue
        out.append(InterfaceBytes(name.strip(), int(fields[0]), int(fields[8])))
    return out


def total_bytes(interfaces: list[InterfaceBytes], exclude: tuple[str, ...] = ("lo",)) -> tuple[int, int]:
    """(rx, tx) summed over the interfaces not excluded."""
    kept = [i for i in interfaces if i.name not in exclude]
    return sum(i.rx_bytes for i in kept), sum(i.tx_bytes for i in kept)
