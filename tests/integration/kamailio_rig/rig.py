"""A private Kamailio instance (registrar, presence and XCAP server) for integration tests.

Each KamailioRig renders its own config, SQLite database and TLS certificates into a temporary
directory and listens on free loopback ports, so several test runs (or pytest-xdist workers) can
each have one. It runs as a non-daemon in its own process group and is stopped by that group's id.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from .ports import pick_free_ports, port_is_free
from .raw_sip import SipClientSocket, Transport
from .tls_certs import make_server_certificate

HERE = Path(__file__).resolve().parent
CONFIG_TEMPLATE = HERE / "kamailio.cfg.in"
SCHEMA_DIR = Path("/usr/share/kamailio/db_sqlite")
SCHEMAS = ("standard", "auth_db", "presence")
# Named test users; the load users serve tests that register many endpoints at once.
NAMED_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
LOAD_USERS = tuple(f"load{i:03d}" for i in range(100))

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_LOG_TAIL_LINES = 40
_PROBE_TIMEOUT = 0.25
_RPC_TIMEOUT = 5.0
# Running rigs, so that an interpreter exit without teardown still stops them.
_live: set[KamailioRig] = set()


class KamailioRigError(RuntimeError):
    """The rig could not be set up, started or stopped; the message says why."""


class KamailioRpcError(RuntimeError):
    """A JSON-RPC command was answered with an error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.code = code
        self.message = message


@attrs.frozen
class Binding:
    """One contact the registrar holds for an AoR, as usrloc reports it."""

    contact: str
    expires: int
    call_id: str
    cseq: int
    received: str | None
    user_agent: str | None
    socket: str
    instance: str | None
    reg_id: int


def find_binary(name: str) -> str | None:
    """`name` on PATH or in the sbin directories (Debian installs Kamailio's tools there)."""
    return shutil.which(name) or next(
        (str(Path(d) / name) for d in _SBIN_DIRS if os.access(Path(d) / name, os.X_OK)), None
    )


def _not_set(value: object) -> str | None:
    text = str(value)
    return None if text in ("[not set]", "n/a") else text


def _binding_from_rpc(entry: Mapping[str, Any]) -> Binding:
    contact = entry["Contact"]
    return Binding(
        contact=str(contact["Address"]),
        expires=int(contact["Expires"]) if str(contact["Expires"]).lstrip("-").isdigit() else 0,
        call_id=str(contact["Call-ID"]),
        cseq=int(contact["CSeq"]),
        received=_not_set(contact["Received"]),
        user_agent=_not_set(contact["User-Agent"]),
        socket=str(contact["Socket"]),
        instance=_not_set(contact["Instance"]),
        reg_id=int(contact["Reg-Id"]),
    )


def aor_user(aor: str) -> str:
    """The user part of an AoR ('sip:alice@host', 'alice@host' or 'alice'): the usrloc key here."""
    text = re.sub(r"^sips?:", "", aor.strip().strip("<>"))
    return text.split("@", 1)[0]


def _private_temp_dir() -> Path:
    # Unix socket paths are limited to about 108 bytes; a long TMPDIR would not fit.
    base = tempfile.gettempdir()
    if len(base) > 40:
        base = "/tmp"  # noqa: S108 - mkdtemp below makes a private 0700 directory in it
    return Path(tempfile.mkdtemp(prefix="ucma-kamailio-", dir=base))


class KamailioRig:
    """A Kamailio registrar/presence/XCAP server on loopback, private to one test session."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        domain: str | None = None,
        with_423: bool = False,
        min_expires: int = 5,
        max_expires: int = 7200,
        default_expires: int = 3600,
        max_contacts: int = 10,
        with_presrules: bool = False,
        debug: bool = False,
        workers: int = 2,
        shm_mb: int = 64,
        users: Mapping[str, str] | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        self.host = host
        self.domain = domain or host
        self.with_423 = with_423
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts
        self.with_presrules = with_presrules
        self.debug = debug
        self.workers = workers
        self.shm_mb = shm_mb
        self.start_timeout = start_timeout
        passwords = {name: secrets.token_hex(8) for name in (*NAMED_USERS, *LOAD_USERS)}
        passwords.update(users or {})
        self._users: Mapping[str, str] = MappingProxyType(passwords)
        self.udp_port = self.tcp_port = self.tls_port = self.xcap_port = 0
        self.work_dir: Path | None = None
        self.ca_file: Path | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._kamailio = ""

    # -- public view -------------------------------------------------------------------------

    @property
    def users(self) -> Mapping[str, str]:
        """Read-only user name -> password for every subscriber in the database."""
        return self._users

    @property
    def xcap_root(self) -> str:
        """The XCAP root URI (documents are under <root>/<auid>/users/sip:<user>@<domain>/...)."""
        return f"http://{self.host}:{self.xcap_port}/xcap-root"

    @property
    def log_file(self) -> Path:
        return self._dir / "kamailio.log"

    @property
    def ctl_socket(self) -> str:
        """Binrpc address for `kamcmd -s <ctl_socket> <command>`."""
        return f"unix:{self._dir / 'kamailio_ctl'}"

    @property
    def pid(self) -> int | None:
        """Process id of the main Kamailio process (also its process group id) while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def port_for(self, transport: Transport) -> int:
        """The SIP port for `transport`."""
        return {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}[transport]

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this rig's CA, with hostname checks on."""
        return ssl.create_default_context(cafile=str(self._ca))

    def __repr__(self) -> str:
        return (f"KamailioRig(host={self.host!r}, domain={self.domain!r}, udp/tcp={self.udp_port}, "
                f"tls={self.tls_port}, xcap={self.xcap_port}, pid={self.pid}, work_dir={self.work_dir})")

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare files on first use, launch Kamailio and return once it answers on every port."""
        if self.running:
            raise KamailioRigError("Kamailio is already running")
        first_start = self.work_dir is None
        if first_start:
            self._prepare()
        for attempt in range(3):
            if first_start:
                self._choose_ports()
            self._render_config()
            try:
                self._launch_and_wait()
                _live.add(self)
                return
            except KamailioRigError as error:
                # Another program may have bound a chosen port in the meantime: try other ports.
                if not first_start or attempt == 2 or "Address already in use" not in str(error):
                    raise

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Kamailio by its process group (SIGTERM, then SIGKILL) and wait until all of it is gone."""
        proc, self._proc = self._proc, None
        _live.discard(self)
        if proc is None:
            return
        group = proc.pid
        _signal_group(group, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(group, signal.SIGKILL)
            proc.wait(5.0)
        deadline = time.monotonic() + timeout
        while live_group_members(group):
            if time.monotonic() > deadline:
                _signal_group(group, signal.SIGKILL)
                deadline = time.monotonic() + 5.0
            time.sleep(0.005)

    def restart(self) -> None:
        """Stop and start again on the same ports and files; registrations and presence state are lost."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop Kamailio and delete the rig's private directory."""
        self.stop()
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> KamailioRig:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- inspection --------------------------------------------------------------------------

    def rpc(self, method: str, *params: str | int) -> Any:
        """Run a Kamailio RPC command over its JSON-RPC datagram socket and return the result."""
        client_path = self._dir / f"rpc-{secrets.token_hex(6)}.sock"
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.bind(str(client_path))
            try:
                client.settimeout(_RPC_TIMEOUT)
                client.sendto(json.dumps(request).encode(), str(self._dir / "kamailio_rpc.sock"))
                reply = json.loads(client.recv(1 << 20))
            finally:
                client_path.unlink(missing_ok=True)
        if "error" in reply:
            raise KamailioRpcError(method, int(reply["error"].get("code", 0)), str(reply["error"].get("message")))
        return reply.get("result")

    def bindings(self, aor: str) -> list[Binding]:
        """Contacts the registrar holds for `aor` (keyed by its user part), [] when there are none."""
        try:
            result = self.rpc("ul.lookup", "location", aor_user(aor))
        except KamailioRpcError as error:
            if "not found" in error.message.lower():
                return []
            raise
        return [_binding_from_rpc(entry) for entry in result.get("Contacts", [])]

    def remove_bindings(self, aor: str) -> None:
        """Drop every contact of `aor` from the registrar, as if they had expired."""
        try:
            self.rpc("ul.rm", "location", aor_user(aor))
        except KamailioRpcError as error:
            if "not found" not in error.message.lower():
                raise

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last `lines` lines of Kamailio's log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError as error:
            return f"(no log: {error})"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        if self.work_dir is None:
            raise KamailioRigError("the rig has not been started")
        return self.work_dir

    @property
    def _ca(self) -> Path:
        if self.ca_file is None:
            raise KamailioRigError("the rig has not been started")
        return self.ca_file

    def _prepare(self) -> None:
        kamailio = find_binary("kamailio")
        if kamailio is None:
            raise KamailioRigError("the kamailio binary is missing; run tests/install_test_deps.sh as root")
        missing = [name for name in SCHEMAS if not (SCHEMA_DIR / f"{name}-create.sql").is_file()]
        if missing:
            raise KamailioRigError(f"Kamailio's SQLite schemas {missing} are missing from {SCHEMA_DIR}; "
                                   "run tests/install_test_deps.sh as root")
        self._kamailio = kamailio
        self.work_dir = _private_temp_dir()
        try:
            self._create_database()
            names = [self.host, "localhost", self.domain]
            self.ca_file = make_server_certificate(self.work_dir / "tls", names).ca_file
        except BaseException:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None
            raise

    def _create_database(self) -> None:
        database = sqlite3.connect(self._dir / "kamailio.sqlite")
        try:
            for name in SCHEMAS:
                database.executescript((SCHEMA_DIR / f"{name}-create.sql").read_text())
            database.executemany(
                "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
                [(user, self.domain, password) for user, password in self._users.items()],
            )
            database.commit()
            # Many worker processes read while one writes.
            database.execute("PRAGMA journal_mode=WAL")
        finally:
            database.close()

    def _choose_ports(self) -> None:
        sip, tls, xcap = pick_free_ports(self.host, 3, udp_too=frozenset({0}))
        self.udp_port = self.tcp_port = sip
        self.tls_port, self.xcap_port = tls, xcap

    def _render_config(self) -> None:
        aliases = [f'alias="{name}"' for name in dict.fromkeys(["localhost", self.domain]) if name != self.host]
        values = {
            "WORK_DIR": str(self._dir),
            "HOST": self.host,
            "SIP_PORT": str(self.udp_port),
            "TLS_PORT": str(self.tls_port),
            "XCAP_PORT": str(self.xcap_port),
            "ALIASES": "\n".join(aliases),
            "WORKERS": str(self.workers),
            "DEFAULT_EXPIRES": str(self.default_expires),
            "MIN_EXPIRES": str(self.min_expires),
            "MIN_EXPIRES_MODE": "1" if self.with_423 else "0",
            "MAX_EXPIRES": str(self.max_expires),
            "MAX_CONTACTS": str(self.max_contacts),
            "AUTH_SECRET": secrets.token_hex(16),
        }

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise KamailioRigError(f"{CONFIG_TEMPLATE.name} has an unknown placeholder @{name}@")
            return values[name]

        text = re.sub(r"@([A-Z][A-Z_]*)@", substitute, CONFIG_TEMPLATE.read_text())
        (self._dir / "kamailio.cfg").write_text(text)

    def _command(self) -> list[str]:
        defines = (["-A", "WITH_PRESRULES"] if self.with_presrules else []) + (
            ["-A", "WITH_DEBUG"] if self.debug else [])
        return [self._kamailio, "-DD", "-E", "-f", str(self._dir / "kamailio.cfg"), "-Y", str(self._dir),
                "-w", str(self._dir), "-m", str(self.shm_mb), "-M", "8", *defines]

    def _launch_and_wait(self) -> None:
        for port, udp in ((self.udp_port, True), (self.tls_port, False), (self.xcap_port, False)):
            if not port_is_free(self.host, port, tcp=True, udp=udp):
                raise KamailioRigError(f"cannot start Kamailio: port {self.host}:{port}: Address already in use")
        launched = time.monotonic()
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=self._dir, start_new_session=True)
        try:
            self._wait_ready(launched)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - launched

    def _wait_ready(self, launched: float) -> None:
        proc = self._proc
        assert proc is not None
        probes: dict[str, Callable[[], bool]] = {
            f"UDP {self.udp_port}": lambda: self._answers_register("udp"),
            f"TCP {self.tcp_port}": lambda: self._answers_register("tcp"),
            f"TLS {self.tls_port}": lambda: self._answers_register("tls"),
            f"XCAP {self.xcap_port}": self._xcap_challenges,
        }
        deadline = launched + self.start_timeout
        while probes:
            if proc.poll() is not None:
                raise KamailioRigError(f"Kamailio exited with status {proc.returncode} while starting "
                                       f"({self._command_text()}); log tail:\n{self.log_tail()}")
            for name, probe in list(probes.items()):
                if probe():
                    del probes[name]
            if not probes:
                return
            if time.monotonic() > deadline:
                raise KamailioRigError(f"Kamailio did not answer on {', '.join(probes)} within "
                                       f"{self.start_timeout} s; log tail:\n{self.log_tail()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.01)  # paces the probes and notices an early exit at once

    def _command_text(self) -> str:
        return " ".join(self._command())

    def _answers_register(self, transport: Transport) -> bool:
        """An unauthenticated REGISTER gets its 401 challenge (proves SIP, auth and the database work)."""
        try:
            context = self.ssl_context() if transport == "tls" else None
            with SipClientSocket(self.host, self.port_for(transport), transport, timeout=_PROBE_TIMEOUT,
                                 ssl_context=context) as client:
                return client.register("alice", self.domain, expires=0).status == 401
        except (OSError, ValueError):
            return False

    def _xcap_challenges(self) -> bool:
        request = (f"GET /xcap-root/xcap-caps/global/index HTTP/1.1\r\nHost: {self.host}:{self.xcap_port}\r\n"
                   "Connection: close\r\n\r\n").encode()
        try:
            with socket.create_connection((self.host, self.xcap_port), timeout=_PROBE_TIMEOUT) as stream:
                stream.settimeout(_PROBE_TIMEOUT)
                stream.sendall(request)
                return stream.recv(64).startswith(b"HTTP/1.1 401")
        except OSError:
            return False


# The type of a factory fixture that returns started rigs built with KamailioRig's options.
MakeKamailio = Callable[..., KamailioRig]


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signum)


def live_group_members(group: int) -> list[int]:
    """Live (non-zombie) processes in process group `group`, found through /proc."""
    members: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


@atexit.register
def _stop_leftovers() -> None:
    for rig in list(_live):
        rig.stop()
