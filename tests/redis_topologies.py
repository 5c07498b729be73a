"""Real Redis topologies on 127.0.0.1 for the tests and the bench: a master with a replica
watched by three ``redis-sentinel`` processes, and a Redis Cluster of three masters with a
replica each. Short timeouts make a fail-over take a few seconds. Every wait is bounded;
everything started is stopped.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from tests.servers import RedisServer, free_port, wait_for

MASTER_NAME = "mymaster"
SWITCH_TIMEOUT = 30.0  # seconds a fail-over, a rejoin or a cluster's start may take
# A master refuses writes it cannot hand to a replica (the bridge also WAITs for one).
SAFETY = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
FAST_SYNC = ("--repl-diskless-sync-delay", "0")  # a replica syncs at once, not after 5 s


class Topology(Protocol):
    def start(self) -> Topology: ...
    def stop(self) -> None: ...


T = TypeVar("T", bound=Topology)


@contextlib.contextmanager
def running(topology: T) -> Iterator[T]:
    """``topology`` started, and stopped (whatever was started of it) afterwards."""
    try:
        topology.start()
        yield topology
    finally:
        topology.stop()


def until(check: Callable[[], bool], what: str, timeout: float = SWITCH_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.exceptions.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def role(server: RedisServer) -> str:
    with server.client() as client:
        return str(client.info("replication")["role"])


def synced_replicas(server: RedisServer) -> int:
    with server.client() as client:
        info = client.info("replication")
    return sum(
        1
        for key, value in info.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )


class SentinelSet:
    """A master and a replica (``servers``), three sentinels (down after 1 s)."""

    def __init__(self, directory: Path, safety: bool = True) -> None:
        self.directory = directory
        self.extra = [*FAST_SYNC, *(SAFETY if safety else ())]
        master = RedisServer(directory / "a", False, *self.extra)
        self.servers = [master, RedisServer(directory / "b", False, *self.extra)]
        self.servers[1].extra += ["--replicaof", "127.0.0.1", str(master.port)]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []
        self.addresses = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> SentinelSet:
        executable = shutil.which("redis-sentinel")
        if executable is None:
            raise RuntimeError("redis-sentinel is not installed (apt-get install redis-sentinel)")
        for server in self.servers:
            server.directory.mkdir(parents=True, exist_ok=True)
            server.start()
        until(lambda: synced_replicas(self.servers[0]) == 1, "the replica's first sync")
        for port in self.sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.servers[0].port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
            )
            process = subprocess.Popen(
                [executable, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.sentinels.append(process)
            wait_for(lambda port=port: _pings(port), f"sentinel on {port}", process)
        return self

    def master(self) -> RedisServer:
        """The server the sentinels name as master now."""
        with redis.Redis(port=self.sentinel_ports[0], socket_timeout=2) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(MASTER_NAME)
        return next(server for server in self.servers if server.port == int(port))

    def kill_master_and_rejoin(self) -> None:
        """SIGKILL the master; once the sentinels promoted the replica, start the old
        master again as its replica (as its supervisor would, told by the sentinels)."""
        old = self.master()
        old.kill()
        until(lambda: self.master() is not old and role(self.master()) == "master", "promotion")
        new = self.master()
        old.extra = [*self.extra, "--replicaof", "127.0.0.1", str(new.port)]
        old.start()
        until(lambda: synced_replicas(new) == 1, "the old master's rejoin as a replica")

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
        for process in self.sentinels:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for server in self.servers:
            server.stop()


class ClusterSet:
    """Three masters with a replica each; a node is failed after 1 s."""

    def __init__(self, directory: Path, safety: bool = True) -> None:
        options = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000",
            "--cluster-replica-validity-factor", "0",
            "--cluster-require-full-coverage", "no",
            *FAST_SYNC,
            *(SAFETY if safety else ()),
        )  # fmt: skip
        self.servers = [RedisServer(directory / f"n{i}", False, *options) for i in range(6)]
        for server in self.servers:
            server.port = cluster_port()
        self.url = f"redis://127.0.0.1:{self.servers[0].port}"

    def start(self) -> ClusterSet:
        for server in self.servers:
            server.directory.mkdir(parents=True, exist_ok=True)
            server.start()
        nodes = [f"127.0.0.1:{server.port}" for server in self.servers]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "1",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=SWITCH_TIMEOUT,
        )  # fmt: skip
        self.settle()
        return self

    def settle(self) -> None:
        """Until every node says the cluster is ok and each master has its replica."""

        def settled() -> bool:
            live = [s for s in self.servers if s.process is not None]
            if not all(_cluster_ok(server) for server in live):
                return False
            return all(synced_replicas(master) >= 1 for master in self.masters())

        until(settled, "the cluster's settling")

    def masters(self) -> list[RedisServer]:
        live = [s for s in self.servers if s.process is not None]
        return [server for server in live if role(server) == "master"]

    def node_id(self, server: RedisServer) -> str:
        with server.client() as client:
            return str(client.execute_command("CLUSTER", "MYID").decode())

    def _slots(self) -> list[tuple[int, int, int]]:
        """(first slot, last slot, port of its master) of every range."""
        with self.masters()[0].client() as client:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        return [(int(start), int(end), int(master[1])) for start, end, master, *_ in ranges]

    def owner(self, key: str) -> RedisServer:
        """The master of ``key``'s slot."""
        slot = self.slot(key)
        port = next(port for start, end, port in self._slots() if start <= slot <= end)
        return next(server for server in self.servers if server.port == port)

    def slot(self, key: str) -> int:
        with self.masters()[0].client() as client:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))

    def slots_up_to(self, master: RedisServer, slot: int) -> int:
        """How many of ``master``'s slots are not above ``slot``."""
        ranges = [(start, end) for start, end, port in self._slots() if port == master.port]
        return sum(min(end, slot) - start + 1 for start, end in ranges if start <= slot)

    def kill_master_and_rejoin(self, victim: RedisServer) -> None:
        """SIGKILL a master; once its replica took over, start it again: it rejoins as the
        new master's replica."""
        victim.kill()
        until(lambda: len(self.masters()) == 3, "the replica's promotion")
        victim.start()
        self.settle()

    def reshard(self, source: RedisServer, target: RedisServer, slots: int) -> None:
        subprocess.run(
            ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{source.port}",
             "--cluster-from", self.node_id(source), "--cluster-to", self.node_id(target),
             "--cluster-slots", str(slots), "--cluster-yes"],
            check=True, capture_output=True, timeout=SWITCH_TIMEOUT * 4,
        )  # fmt: skip

    def flush(self) -> None:
        for master in self.masters():
            with master.client() as client:
                client.flushall()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(1000):
        port = random.randint(20000, 40000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _cluster_ok(server: RedisServer) -> bool:
    with server.client() as client:
        info = client.execute_command("CLUSTER", "INFO").decode()
    return "cluster_state:ok" in info


def _pings(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_timeout=1) as client:
            return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
