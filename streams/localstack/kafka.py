"""A single-node Apache Kafka 4.x broker (KRaft, broker+controller) from Maven jars.

The jars come from ``deploy/install.sh`` (``deploy/kafka/lib/``). Storage is
formatted once per ``state_dir`` (again, wiping data, if the listener ports change).
Readiness is a raw Metadata v4 request that lists at least one broker.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import struct
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from .process import REPO_ROOT, ManagedProcess, StackError

KAFKA_DIR = REPO_ROOT / "deploy" / "kafka"
LIB_DIR = KAFKA_DIR / "lib"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
FAST_START_JVM_OPTS: tuple[str, ...] = ("-XX:TieredStopAtLevel=1",)
"""C1-only JIT: the broker starts in about half the time (~3 s instead of ~6 s on two
busy cores) at some cost in peak throughput; pass ``jvm_opts=()`` for benchmarks."""


def java_binary() -> str:
    """``$JAVA_HOME/bin/java`` if set, else ``java`` from PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise StackError("java not found: install Java 17+ or set JAVA_HOME")
    return found


def render_server_properties(
    state_dir: Path, port: int, controller_port: int, extra: Mapping[str, str] | None = None
) -> str:
    """The broker's ``server.properties`` for a one-node KRaft cluster on 127.0.0.1.

    ``extra`` entries are appended (later keys win in Java Properties).
    """
    data = Path(state_dir) / "data"
    return "\n".join(
        [
            "# Written by streams.localstack.kafka; edits are overwritten.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},"
            f"CONTROLLER://127.0.0.1:{controller_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            "group.initial.rebalance.delay.ms=0",
            # A broker restarted after a crash is refused (DUPLICATE_BROKER_REGISTRATION)
            # until its old session expires: keep that short (defaults 9000/2000).
            "broker.session.timeout.ms=4000",
            "broker.heartbeat.interval.ms=1000",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            *(f"{key}={value}" for key, value in (extra or {}).items()),
            "",
        ]
    )


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> int:
    """Send a Metadata v4 request (no topics) and return how many brokers it lists.

    Raises OSError (or ValueError on a malformed reply) when the broker does not answer.
    """
    client_id = b"inferwatch-localstack"
    header = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id
    body = struct.pack(">ib", 0, 0)  # topics: empty array; allow_auto_topic_creation=false
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        reply = _recv_exact(sock, size)
    correlation_id, _throttle, brokers = struct.unpack(">iii", reply[:12])
    if correlation_id != 7:
        raise ValueError(f"unexpected correlation id {correlation_id}")
    return int(brokers)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return bytes(buf)


class LocalKafka(ManagedProcess):
    """Kafka broker+controller on ``127.0.0.1:port`` / ``127.0.0.1:controller_port``."""

    name = "kafka"
    start_timeout = 90.0
    stop_timeout = 30.0

    def __init__(
        self,
        state_dir: Path,
        port: int = 9092,
        controller_port: int = 19093,
        heap: str = "512m",
        lib_dir: Path = LIB_DIR,
        extra_config: Mapping[str, str] | None = None,
        jvm_opts: Sequence[str] = FAST_START_JVM_OPTS,
    ) -> None:
        super().__init__(state_dir)
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.lib_dir = Path(lib_dir)
        self.extra_config = dict(extra_config or {})
        self.jvm_opts = list(jvm_opts)

    @property
    def address(self) -> str:
        """The bootstrap servers string, ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def server_log(self) -> Path:
        """The broker's own log4j log (the process log only holds stdout/stderr)."""
        return self.state_dir / "server.log"

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            java_binary(),
            f"-Xmx{self.heap}",
            *self.jvm_opts,
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.state_dir}",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            f"{self.lib_dir}/*",
            main,
            *args,
        ]

    def command(self) -> Sequence[str]:
        return self._java("kafka.Kafka", str(self.config_file))

    def prepare(self) -> None:
        """Write server.properties; format storage if new or if the config changed."""
        if not (self.lib_dir / ".complete").exists():
            raise StackError(f"Kafka jars missing in {self.lib_dir}: run deploy/install.sh")
        config = render_server_properties(
            self.state_dir, self.port, self.controller_port, self.extra_config
        )
        data = self.state_dir / "data"
        formatted_with = self.state_dir / "formatted.properties"
        if formatted_with.exists() and formatted_with.read_text() == config:
            self.config_file.write_text(config)
            return
        shutil.rmtree(data, ignore_errors=True)
        self.config_file.write_text(config)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = self._java(
            "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",  # ids may start with "-"
            "-c", str(self.config_file), "--standalone",
        )  # fmt: skip
        done = subprocess.run(fmt, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise StackError(f"kafka storage format failed:\n{done.stdout}\n{done.stderr}")
        formatted_with.write_text(config)

    def ports(self) -> Sequence[int]:
        return (self.port, self.controller_port)

    def is_ready(self) -> bool:
        try:
            return metadata_brokers("127.0.0.1", self.port, timeout=1.0) >= 1
        except (OSError, ValueError, struct.error):
            return False

    def log_tail(self, lines: int = 40) -> str:
        """Tail of stdout/stderr plus the tail of the broker's server.log."""
        out = super().log_tail(lines)
        try:
            server = self.server_log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            server = []
        return out + ("\n--- server.log:\n" + "\n".join(server) if server else "")
