"""One leader among the servers of a cluster, elected through ZooKeeper (or ClickHouse Keeper).

Several ``infersight server`` processes on one ClickHouse cluster share the store, but some work
must run in exactly one of them at a time: the rule evaluator and its notifications, the rollup
job, retention and event detection. Each process joins the election with an ephemeral sequential
node under ``/infersight/leader/<database>``; the lowest node leads. A leader that dies loses its
node when its ZooKeeper session expires (``session_timeout_s``), and the next process takes over.
A process that loses its connection stops leading at once (kazoo's SUSPENDED), before its session
can expire and another take over, so two never lead together while ZooKeeper keeps its promises.

The audit chain is written by whichever process takes an audit request, under a ZooKeeper lock
(``chain_lock``), re-reading the chain head from the table inside the lock: one writer at a time,
each record chained exactly once, no fork.

Without ``cluster.zookeeper`` (the embedded single-process default) ``AlwaysLeader`` leads and no
lock is taken: nothing to install, nothing to run.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from loguru import logger


class Leadership(Protocol):
    def is_leader(self) -> bool: ...

    def chain_lock(self) -> contextlib.AbstractContextManager[None]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class AlwaysLeader:
    """The single-process default: always the leader, no lock."""

    def is_leader(self) -> bool:
        return True

    @contextlib.contextmanager
    def chain_lock(self) -> Iterator[None]:
        yield

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class ZooKeeperLeader:
    """``ZooKeeperLeader("zk1:2181,zk2:2181", "infersight").start()``; ``is_leader()`` any time."""

    def __init__(
        self,
        hosts: str,
        database: str,
        identity: str = "",
        session_timeout_s: float = 6.0,
        poll_s: float = 0.5,
    ) -> None:
        from kazoo.client import KazooClient  # the ``cluster`` extra; only needed when configured

        self.identity = identity or f"{socket.gethostname()}:{os.getpid()}"
        self._root = f"/infersight/leader/{database}"
        self._lock_path = f"/infersight/audit_chain/{database}"
        self._client: Any = KazooClient(hosts=hosts, timeout=session_timeout_s)
        self._client.add_listener(self._on_state)
        self._poll_s = poll_s
        self._leading = False
        self._node: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def is_leader(self) -> bool:
        return self._leading

    def start(self, timeout_s: float = 30.0) -> None:
        self._client.start(timeout=timeout_s)
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def _on_state(self, state: str) -> None:
        # Called on kazoo's own thread: no blocking calls here.
        if state != "CONNECTED" and self._leading:
            self._leading = False
            logger.warning("leader: connection to ZooKeeper {}; stepped down", state.lower())
        if state == "LOST":
            self._node = None  # the session is gone, and with it our node

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._check()
            except Exception as err:  # loop boundary: ZooKeeper away or slow; try again
                if self._leading:
                    logger.warning("leader: {}; stepped down", err)
                self._leading = False
            self._stopping.wait(self._poll_s)

    def _check(self) -> None:
        if not self._client.connected:
            self._leading = False
            return
        if self._node is None or not self._client.exists(self._node):
            self._node = self._client.create(
                f"{self._root}/n_", self.identity.encode(), ephemeral=True, sequence=True, makepath=True
            )
        children = sorted(self._client.get_children(self._root))
        leading = bool(children) and f"{self._root}/{children[0]}" == self._node and self._client.connected
        if leading != self._leading:
            logger.info("leader: {} is {}", self.identity, "now the leader" if leading else "a follower")
        self._leading = leading

    @contextlib.contextmanager
    def chain_lock(self, timeout_s: float = 30.0) -> Iterator[None]:
        """Held while one audit append reads the chain head and writes after it."""
        lock = self._client.Lock(self._lock_path, self.identity)
        if not lock.acquire(timeout=timeout_s):
            raise TimeoutError("audit chain lock not acquired")
        try:
            yield
        finally:
            lock.release()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._leading = False
        with contextlib.suppress(Exception):
            self._client.stop()
            self._client.close()
