"""SIPp as a scripted, misbehaving registrar: one scenario file, one free loopback port.

The scenarios in the sipp/ folder answer REGISTER in one fixed way each (200 without a
challenge, 503 with Retry-After, silence, a dropped connection). SIPp runs in its own process
group with a bounded lifetime, and is stopped by that group's id.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from .ports import pick_free_port

SCENARIO_DIR = Path(__file__).resolve().parent / "sipp"
# Every key any scenario uses needs a value, or SIPp refuses to load the scenario.
DEFAULT_KEYS: Mapping[str, str] = {"expires": "60", "retry_after": "1"}

SippTransport = Literal["udp", "tcp"]

_TRANSPORT_MODES: Mapping[str, str] = {"udp": "u1", "tcp": "t1"}
_PROC_NET: Mapping[str, str] = {"udp": "/proc/net/udp", "tcp": "/proc/net/tcp"}
_TCP_LISTEN = "0A"
# Running servers, so that an interpreter exit without teardown still stops them.
_live: set[SippServer] = set()


class SippError(RuntimeError):
    """SIPp is missing, could not start, or did not stop; the message says why."""


def scenario_path(scenario: str | Path) -> Path:
    """A scenario given by name ('register_200') or by path, checked to exist."""
    path = Path(scenario)
    if path.suffix != ".xml":
        path = SCENARIO_DIR / f"{scenario}.xml"
    if not path.is_file():
        known = sorted(p.stem for p in SCENARIO_DIR.glob("*.xml"))
        raise SippError(f"no SIPp scenario {scenario!r}; the rig has {known}")
    return path


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _bound_inodes(port: int, transport: SippTransport) -> set[int]:
    """Inodes of IPv4 sockets bound to `port` (listening ones only, for TCP)."""
    inodes: set[int] = set()
    with open(_PROC_NET[transport]) as table:
        next(table)
        for line in table:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and (transport == "udp" or fields[3] == _TCP_LISTEN):
                inodes.add(int(fields[9]))
    return inodes


class SippServer:
    """One SIPp process serving `scenario` as a UAS on a free port of `host`."""

    def __init__(
        self,
        scenario: str | Path,
        transport: SippTransport = "udp",
        *,
        host: str = "127.0.0.1",
        keys: Mapping[str, str] | None = None,
        lifetime: float = 120.0,
        start_timeout: float = 10.0,
    ) -> None:
        if transport not in _TRANSPORT_MODES:
            raise ValueError(f"SIPp here serves udp or tcp, not {transport!r} (the Debian build has no TLS)")
        self.scenario = scenario_path(scenario)
        self.transport: SippTransport = transport
        self.host = host
        self.keys = {**DEFAULT_KEYS, **(keys or {})}
        self.lifetime = lifetime
        self.start_timeout = start_timeout
        self.port = 0
        self.work_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """SIPp's process id (also its process group id) while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def returncode(self) -> int | None:
        """SIPp's exit status once it has ended (0: every call passed, 1: some failed)."""
        return None if self._proc is None else self._proc.poll()

    def __repr__(self) -> str:
        return (f"SippServer({self.scenario.stem!r}, {self.transport!r}, port={self.port}, pid={self.pid}, "
                f"returncode={self.returncode})")

    def start(self) -> None:
        """Launch SIPp and return once it has bound its port."""
        binary = shutil.which("sipp")
        if binary is None:
            raise SippError("the sipp binary is missing; run tests/install_test_deps.sh as root")
        if self._proc is not None:
            raise SippError("this SippServer was already started")
        self.work_dir = Path(tempfile.mkdtemp(prefix="ucma-sipp-"))
        for attempt in range(3):
            self.port = pick_free_port(self.host, udp=True)
            self._launch(binary)
            if self._wait_bound():
                _live.add(self)
                return
            failure = self.output_tail()
            self.stop()
            # A lost race for the port shows as an early exit; anything else is not worth a retry.
            if attempt == 2 or "bind" not in failure.lower():
                raise SippError(f"SIPp did not start serving {self.scenario.name} on {self.host}:{self.port}/"
                                f"{self.transport}; output:\n{failure}")
        raise AssertionError("unreachable")

    def wait(self, timeout: float) -> int:
        """Wait up to `timeout` s for SIPp to end by itself and return its exit status."""
        if self._proc is None:
            raise SippError("SIPp was not started")
        return self._proc.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop SIPp by its process group (SIGTERM, then SIGKILL) and reap it."""
        _live.discard(self)
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        for signum in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue

    def close(self) -> None:
        """Stop SIPp and delete its directory of logs."""
        self.stop()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def messages(self) -> str:
        """SIPp's trace of every message it received and sent so far."""
        return self._read("messages.log")

    def output_tail(self, lines: int = 30) -> str:
        """The end of SIPp's console output and error log."""
        text = self._read("sipp.out") + self._read("errors.log")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> SippServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self, name: str) -> str:
        if self.work_dir is None:
            return ""
        try:
            return (self.work_dir / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _command(self, binary: str) -> list[str]:
        assert self.work_dir is not None
        keys = [arg for key, value in self.keys.items() for arg in ("-key", key, value)]
        return [
            binary, "-sf", str(self.scenario), "-t", _TRANSPORT_MODES[self.transport],
            "-i", self.host, "-p", str(self.port), *keys,
            # Each request starts the scenario afresh, even in a Call-ID seen before.
            "-deadcall_wait", "0",
            # Answer OPTIONS (keep-alive probes) with 200 instead of failing the scenario.
            "-aa",
            "-nostdin", "-timeout", f"{self.lifetime:g}s",
            "-trace_msg", "-message_file", str(self.work_dir / "messages.log"),
            "-trace_err", "-error_file", str(self.work_dir / "errors.log"),
        ]

    def _launch(self, binary: str) -> None:
        assert self.work_dir is not None
        with (self.work_dir / "sipp.out").open("ab") as output:
            self._proc = subprocess.Popen(self._command(binary), stdin=subprocess.DEVNULL, stdout=output,
                                          stderr=subprocess.STDOUT, cwd=self.work_dir, start_new_session=True)

    def _wait_bound(self) -> bool:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if _socket_inodes(proc.pid) & _bound_inodes(self.port, self.transport):
                return True
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.005)  # paces the checks and notices an early exit at once
        return False


# The type of a factory fixture: (scenario, transport="udp", **keys) -> started SippServer.
MakeSippServer = Callable[..., SippServer]


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        server.stop()
