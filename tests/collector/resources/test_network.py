"""/proc/net/dev against captured real files (procfs, node_exporter)."""

from __future__ import annotations

from pathlib import Path

from collector.resources.network import parse_net_dev, total_bytes


def test_host_net_dev(testdata: Path) -> None:
    rows = parse_net_dev((testdata / "proc/procfs_proc_net_dev").read_text())
    assert [r.name for r in rows] == ["vethf345468", "lo", "docker0", "eth0"]
    eth0 = next(r for r in rows if r.name == "eth0")
    assert (eth0.rx_bytes, eth0.tx_bytes) == (874354587, 563352563)
    assert total_bytes(rows) == (648 + 2568 + 874354587, 438 + 438 + 563352563)


def test_edge_cases(testdata: Path) -> None:
    rows = {
        r.name: r for r in parse_net_dev((testdata / "proc/node_exporter_proc_net_dev_edgecases").read_text())
    }
    assert rows["eth0"].rx_bytes == 68210035552  # counters glued to the colon
    assert rows["ibr10:30"].tx_bytes == 0  # an alias with a colon in its name
    assert rows["flannel.1"].tx_bytes == 20758990068
    assert "💩0" in rows


def test_pod_namespace(testdata: Path) -> None:
    rows = parse_net_dev((testdata / "proc/procfs_proc_26231_net_dev").read_text())
    assert rows
    assert all(r.rx_bytes >= 0 and r.tx_bytes >= 0 for r in rows)
