"""Background-process handling shared by the local-stack launchers.

A :class:`ManagedProcess` owns one daemon (Kafka, Prometheus, Alertmanager, ...)
whose state lives in ``state_dir``: a pid file, a log file, and whatever the
subclass writes there. Contract:

* ``start()`` is idempotent: a live, ready process is left alone; a recorded pid
  that has died (a crash) is cleared and the daemon is started again. It returns
  once ``is_ready()`` holds, or raises :class:`StackError` with the log tail.
* ``stop()`` sends SIGTERM to the process group, waits, then SIGKILLs it.
* ``status()`` tells RUNNING / CRASHED (pid file left, process gone) / STOPPED.
"""

from __future__ import annotations

import enum
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

from .ports import port_open

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root (deploy/ and the default .stack/ live there)."""


class StackError(RuntimeError):
    """A local-stack process failed to start or misbehaved."""


class Status(enum.Enum):
    """What ``ManagedProcess.status()`` reports."""

    RUNNING = "running"
    CRASHED = "crashed"
    STOPPED = "stopped"


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when GET ``url`` answers 2xx; never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def find_binary(name: str) -> str:
    """Absolute path of executable ``name`` on PATH, or StackError naming the fix."""
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found on PATH: run deploy/install.sh")
    return found


def seconds(value: float) -> str:
    """A Prometheus/Alertmanager duration string for ``value`` seconds (e.g. '1500ms')."""
    return f"{max(1, round(value * 1000))}ms"


class ManagedProcess(ABC):
    """One background daemon with a pid file and a log file under ``state_dir``."""

    name: str = "process"
    start_timeout: float = 60.0
    stop_timeout: float = 20.0

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir).resolve()
        self._child: subprocess.Popen[bytes] | None = None

    # -- to implement -------------------------------------------------------
    @abstractmethod
    def command(self) -> Sequence[str]:
        """The argv that runs the daemon in the foreground."""

    @abstractmethod
    def is_ready(self) -> bool:
        """Cheap, non-raising probe: does the daemon answer requests?"""

    @property
    @abstractmethod
    def address(self) -> str:
        """Where clients reach it (``host:port`` or a URL)."""

    def prepare(self) -> None:
        """Write config files / format storage before each start (default: nothing)."""

    def env(self) -> dict[str, str] | None:
        """Environment for the daemon (default: inherit)."""
        return None

    def ports(self) -> Sequence[int]:
        """127.0.0.1 ports the daemon binds; ``start`` refuses if one is taken."""
        return ()

    # -- files --------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded pid, or None when there is no (valid) pid file."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def log_tail(self, lines: int = 40) -> str:
        """Last ``lines`` lines of the process log ('' when there is none)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ------------------------------------------------------------
    def _alive(self, pid: int) -> bool:
        if self._child is not None and self._child.pid == pid:
            return self._child.poll() is None  # reaps our own child
        return pid_alive(pid) and self._owns(pid)

    def _owns(self, pid: int) -> bool:
        """Guard against pid reuse: our commands always name ``state_dir``."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True  # no /proc (or raced): trust the pid
        # Empty while the kernel is still exec'ing a just-started child: give it the benefit.
        return not cmdline or str(self.state_dir).encode() in cmdline

    def status(self) -> Status:
        """RUNNING if the recorded pid lives, CRASHED if it died, else STOPPED."""
        pid = self.pid()
        if pid is None:
            return Status.STOPPED
        return Status.RUNNING if self._alive(pid) else Status.CRASHED

    def start(self, timeout: float | None = None) -> str:
        """Start (or keep) the daemon and wait until ready; return ``address``."""
        timeout = self.start_timeout if timeout is None else timeout
        if self.status() is Status.RUNNING:
            self.wait_ready(timeout)
            return self.address
        self.pid_file.unlink(missing_ok=True)  # crashed or stale
        busy = [port for port in self.ports() if port_open("127.0.0.1", port)]
        if busy:
            raise StackError(f"{self.name}: port(s) {busy} on 127.0.0.1 already in use")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with self.log_file.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            self._child = subprocess.Popen(
                list(self.command()),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                env=self.env(),
                start_new_session=True,  # own process group: stop() signals the group
            )
        self.pid_file.write_text(f"{self._child.pid}\n")
        try:
            self.wait_ready(timeout)
        except StackError:
            self.stop()
            raise
        return self.address

    def wait_ready(self, timeout: float) -> None:
        """Block until ``is_ready()``; raise StackError (with log tail) on death/timeout."""
        pid = self.pid()

        def ready_or_dead() -> bool:
            return pid is None or not self._alive(pid) or self.is_ready()

        ok = wait_until(ready_or_dead, timeout, interval=0.2)
        if pid is None or not self._alive(pid):
            raise StackError(f"{self.name} exited during startup; log tail:\n{self.log_tail()}")
        if not ok:
            raise StackError(
                f"{self.name} not ready at {self.address} after {timeout:.0f}s; "
                f"log {self.log_file}, tail:\n{self.log_tail()}"
            )

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the process group, wait up to ``timeout`` s, then SIGKILL; clear pid file."""
        timeout = self.stop_timeout if timeout is None else timeout
        pid = self.pid()
        if pid is not None and self._alive(pid):
            self._signal(pid, signal.SIGTERM)
            if not wait_until(lambda: not self._alive(pid), timeout):
                self._signal(pid, signal.SIGKILL)
                wait_until(lambda: not self._alive(pid), 5.0)
        self.pid_file.unlink(missing_ok=True)
        self._child = None

    def kill(self) -> None:
        """SIGKILL the process group and leave the pid file (simulates a crash)."""
        pid = self.pid()
        if pid is not None and self._alive(pid):
            self._signal(pid, signal.SIGKILL)
            wait_until(lambda: not self._alive(pid), 5.0)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # pid is the group leader (start_new_session)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
