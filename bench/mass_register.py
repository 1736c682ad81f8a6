"""Mass registration benchmark: N UserEndpoints on one server-mode platform against Kamailio, SIPp as the peer.

Run from the repository root (it uses the integration tests' Kamailio rig)::

    python bench/mass_register.py --quick
    python bench/mass_register.py --endpoints 1000,10000 --json out.json

For each N it starts a private Kamailio (TCP) with users load00000.., and measures:

* ucma: every ``begin_establish`` at once, registrations/s from the first begin to the last
  completion, RSS growth per established endpoint, thread and connection counts, CPU and GC time;
* steady state: the same endpoints kept for at least two refresh periods of a short
  registration interval; an endpoint leaving ESTABLISHED or a binding missing at the registrar
  counts as a lapse;
* SIPp, same run, freshly restarted rig: REGISTER -> 401 -> REGISTER+auth -> 200 for the same
  users over one TCP connection (``-t t1``), at least 2,000 calls so that a small N still gives
  a steady rate; ours/SIPp is the rate ratio.

Targets (issue): ratio >= 0.5, <= 10 KB RSS per endpoint, threads constant, 0 lapses. The
figures are printed, not asserted; a MISS marks a target not met.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import gc
import io
import json
import os
import pstats
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import attrs

from ucma.collaboration import (
    CollaborationPlatform,
    LocalEndpointState,
    LocalEndpointStateChangedEventArgs,
    NetworkCredential,
    ServerPlatformSettings,
    UserEndpoint,
    UserEndpointSettings,
)
from ucma.runtime.async_result import AsyncResult
from ucma.signaling.message_data import SipResponseData

if TYPE_CHECKING:
    from tests.integration.kamailio_rig.rig import KamailioRig

REPO = Path(__file__).resolve().parent.parent
SCENARIO = Path(__file__).resolve().parent / "sipp_reg_auth.xml"

TARGET_RATIO = 0.5
TARGET_KB_PER_ENDPOINT = 10.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_KB = 1024


# --- measurements of this process, Kamailio and the machine -------------------------------------------


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    values: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
    return values


def _reset_peak_rss() -> None:
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs)."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _stat_cpu_seconds(stat_text: str) -> float:
    fields = stat_text[stat_text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds used by one thread of this process so far (0 if it is gone)."""
    if thread is None or thread.native_id is None:
        return 0.0
    try:
        return _stat_cpu_seconds(Path(f"/proc/self/task/{thread.native_id}/stat").read_text())
    except OSError:
        return 0.0


def _group_cpu(group: int | None) -> float:
    """CPU seconds used by the live processes of process group `group` (Kamailio's)."""
    if group is None:
        return 0.0
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[2]) == group:
            total += _stat_cpu_seconds(stat)
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    total = sum(values) / _CLOCK_TICKS
    idle = (values[3] + values[4]) / _CLOCK_TICKS
    return total - idle, total


@attrs.frozen
class CpuSample:
    """CPU counters at one instant: this process, Kamailio, reaped children and the machine."""

    wall: float
    process: float
    io_thread: float
    kamailio: float
    children: float
    machine_busy: float
    machine_total: float

    @classmethod
    def take(cls, io_thread: threading.Thread | None, kamailio_group: int | None) -> CpuSample:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy, total = _machine_busy()
        return cls(
            wall=time.perf_counter(),
            process=time.process_time(),
            io_thread=_thread_cpu(io_thread),
            kamailio=_group_cpu(kamailio_group),
            children=children.ru_utime + children.ru_stime,
            machine_busy=busy,
            machine_total=total,
        )


@attrs.frozen
class CpuUse:
    """CPU seconds spent between two samples, and what the rest of the machine did meanwhile."""

    wall: float
    process: float
    io_thread: float
    kamailio: float
    children: float
    others_percent: float

    @classmethod
    def between(cls, start: CpuSample, end: CpuSample) -> CpuUse:
        wall = end.wall - start.wall
        process = end.process - start.process
        kamailio = end.kamailio - start.kamailio
        children = end.children - start.children
        busy = end.machine_busy - start.machine_busy
        # Anything busy on the machine that is neither us, Kamailio nor SIPp (other jobs disturb the figures).
        others = max(0.0, busy - process - kamailio - children)
        return cls(
            wall=wall,
            process=process,
            io_thread=end.io_thread - start.io_thread,
            kamailio=kamailio,
            children=children,
            others_percent=100.0 * others / wall if wall > 0 else 0.0,
        )


class GcWatch:
    """Counts garbage collections and their pause time per generation while installed."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self._started = 0.0

    def _callback(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = int(info["generation"])
            self.collections[generation] += 1
            self.seconds[generation] += time.perf_counter() - self._started

    @contextmanager
    def watching(self) -> Iterator[GcWatch]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


@contextmanager
def _gc_threshold(threshold0: int | None) -> Iterator[None]:
    """Run with a larger first-generation threshold (diagnostic option), then restore the default."""
    saved = gc.get_threshold()
    if threshold0 is not None:
        gc.set_threshold(threshold0, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def _gc_tracked_by_type() -> Counter[str]:
    return Counter(type(obj).__qualname__ for obj in gc.get_objects())


def _settled_thread_count(timeout: float = 5.0) -> int:
    """Threads of this process once those still on their way out have ended (each joined for up to `timeout` s)."""
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and thread is not threading.current_thread():
            thread.join(timeout)
    return threading.active_count()


def _kamailio_stats(rig: KamailioRig, group: str) -> dict[str, int]:
    """Kamailio statistics of one group ('usrloc:', 'registrar:', 'sl:') as name -> value."""
    values: dict[str, int] = {}
    for line in rig.rpc("stats.get_statistics", group):
        name, _, value = str(line).partition(" = ")
        values[name.split(":", 1)[-1]] = int(value)
    return values


def _contacts(rig: KamailioRig) -> int:
    return _kamailio_stats(rig, "usrloc:")["location_contacts"]


# --- the ucma side ---------------------------------------------------------------------------------------


class LapseCounter:
    """Counts endpoints that leave ESTABLISHED (the registration lapsed from the application's view)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.armed = False
        self.lapsed: set[str] = set()
        self.transitions: Counter[str] = Counter()

    def __call__(self, sender: object, args: LocalEndpointStateChangedEventArgs) -> None:
        if not self.armed or args.previous_state is not LocalEndpointState.ESTABLISHED:
            return
        with self._lock:
            self.lapsed.add(str(getattr(sender, "owner_uri", sender)))
            self.transitions[f"{args.state.name} ({args.reason.name})"] += 1


@attrs.frozen
class UcmaResult:
    """What one ucma run measured (see the module docstring)."""

    endpoints: int
    established: int
    failures: dict[str, int]
    establish_seconds: float
    registrations_per_second: float
    rss_kb_per_endpoint: float
    peak_rss_kb_per_endpoint: float
    gc_objects_per_endpoint: float
    top_gc_types_per_endpoint: dict[str, float]
    io_cpu_us_per_registration: float
    process_cpu_us_per_registration: float
    kamailio_cpu_us_per_registration: float
    others_busy_percent: float
    gc_collections: list[int]
    gc_seconds: list[float]
    owned_threads: dict[str, int]
    process_threads: dict[str, int]
    threads_left_right_after_shutdown: list[str]
    connections: int
    live_transactions: int
    registrar_contacts: int
    refresh: dict[str, Any]
    shutdown_seconds: float
    contacts_after_shutdown: int
    profile: str | None


def _make_endpoints(
    platform: CollaborationPlatform, rig: KamailioRig, users: Sequence[str], expires: int, lapses: LapseCounter
) -> list[UserEndpoint]:
    endpoints: list[UserEndpoint] = []
    for user in users:
        settings = UserEndpointSettings(f"sip:{user}@{rig.domain}", rig.host, rig.tcp_port)
        settings.credential = NetworkCredential(user, rig.users[user])
        settings.requested_registration_expires = expires
        endpoint = UserEndpoint(platform, settings)
        endpoint.inner_endpoint.is_endpoint_throttled = False
        endpoint.state_changed += lapses
        endpoints.append(endpoint)
    return endpoints


def _on_io_thread(platform: CollaborationPlatform, fn: Any) -> None:
    """Run `fn` on the platform's I/O thread and wait for it (cProfile profiles the thread it is enabled on)."""
    done = threading.Event()

    def run() -> None:
        try:
            fn()
        finally:
            done.set()

    platform.sip_stack.call_soon(run)
    if not done.wait(30):
        raise RuntimeError("the platform's I/O thread did not run a task within 30 s")


def _profile_text(profile: cProfile.Profile, registrations: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    calls = sum(entry[1] for entry in stats.stats.values())  # type: ignore[attr-defined]
    out.write(f"I/O thread: {calls:,} Python function calls, {calls / max(1, registrations):,.0f} per registration\n")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def _establish_all(endpoints: Sequence[UserEndpoint], timeout: float) -> tuple[float, int, Counter[str]]:
    """begin_establish on every endpoint, wait for all; (seconds to the last completion, established, failures)."""
    started = time.perf_counter()
    results: list[AsyncResult[SipResponseData]] = [endpoint.begin_establish() for endpoint in endpoints]
    _, pending = concurrent.futures.wait(results, timeout=timeout)
    seconds = time.perf_counter() - started
    failures: Counter[str] = Counter()
    established = 0
    for endpoint, result in zip(endpoints, results, strict=True):
        if result in pending:
            failures["no answer within the benchmark's timeout"] += 1
            continue
        try:
            response = endpoint.end_establish(result)
        except Exception as error:
            failures[f"{type(error).__name__}: {str(error)[:120]}"] += 1
            continue
        if response.response_code == 200:
            established += 1
        else:
            failures[f"final response {response.response_code}"] += 1
    return seconds, established, failures


def _hold(
    rig: KamailioRig, endpoints: Sequence[UserEndpoint], lapses: LapseCounter, expires: int, hold: float
) -> dict[str, Any]:
    """Keep the endpoints registered for `hold` s; watch lapses, registrar contacts and refresh traffic."""
    registrar_before = _kamailio_stats(rig, "registrar:")
    replies_before = _kamailio_stats(rig, "sl:")
    lapses.armed = True
    expected = len(endpoints)
    minimum = _contacts(rig)
    samples = 0
    deadline = time.monotonic() + hold
    tick = threading.Event()
    while time.monotonic() < deadline:
        tick.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        minimum = min(minimum, _contacts(rig))
        samples += 1
    lapses.armed = False
    registrar_after = _kamailio_stats(rig, "registrar:")
    replies_after = _kamailio_stats(rig, "sl:")
    accepted = registrar_after["accepted_regs"] - registrar_before["accepted_regs"]
    # Initial registration took CSeq 1 (challenged) and 2; each refresh adds one.
    step = max(1, len(endpoints) // 50)
    sample = endpoints[::step]
    cseqs: list[int] = []
    missing = 0
    for endpoint in sample:
        bindings = rig.bindings(endpoint.owner_uri)
        if not bindings:
            missing += 1
        else:
            cseqs.append(max(binding.cseq for binding in bindings))
    not_established = sum(1 for endpoint in endpoints if endpoint.state is not LocalEndpointState.ESTABLISHED)
    return {
        "registration_expires": expires,
        "held_seconds": hold,
        "refresh_registers_accepted": accepted,
        "refreshes_per_endpoint": accepted / max(1, expected),
        "rejected_registers": registrar_after["rejected_regs"] - registrar_before["rejected_regs"],
        "challenges_401": replies_after["401_replies"] - replies_before["401_replies"],
        "lapsed_endpoints": len(lapses.lapsed),
        "lapse_transitions": dict(lapses.transitions),
        "not_established_at_end": not_established,
        "registrar_min_contacts": minimum,
        "registrar_contacts_expected": expected,
        "contact_samples": samples,
        "sampled_aors": len(sample),
        "sampled_aors_missing": missing,
        "sampled_min_refreshes": (min(cseqs) - 2) if cseqs else None,
    }


def run_ucma(
    rig: KamailioRig,
    users: Sequence[str],
    *,
    expires: int,
    hold: float,
    timeout: float,
    profile: bool,
    gc_threshold0: int | None,
) -> UcmaResult:
    """One server-mode platform, len(users) endpoints: establish all at once, hold, shut down."""
    count = len(users)
    process_threads_before = threading.active_count()
    platform = CollaborationPlatform(ServerPlatformSettings("bench", "localhost", 0))
    lapses = LapseCounter()
    profiler = cProfile.Profile() if profile else None
    endpoints: list[UserEndpoint] = []
    shutdown_seconds = 0.0
    try:
        platform.startup(timeout=15)
        owned_startup = len(platform.owned_threads)
        gc.collect()
        _reset_peak_rss()
        memory_before = _proc_status()
        objects_before = _gc_tracked_by_type()
        endpoints = _make_endpoints(platform, rig, users, expires, lapses)
        gc_watch = GcWatch()
        io_thread = platform.sip_stack.io_thread
        with _gc_threshold(gc_threshold0), gc_watch.watching():
            if profiler is not None:
                _on_io_thread(platform, profiler.enable)
            cpu_start = CpuSample.take(io_thread, rig.pid)
            seconds, established, failures = _establish_all(endpoints, timeout)
            cpu_end = CpuSample.take(io_thread, rig.pid)
            if profiler is not None:
                _on_io_thread(platform, profiler.disable)
        cpu = CpuUse.between(cpu_start, cpu_end)
        gc.collect()
        memory_after = _proc_status()
        objects_after = _gc_tracked_by_type()
        grown = objects_after - objects_before
        owned_established = len(platform.owned_threads)
        process_threads_established = threading.active_count()
        connections = platform.sip_stack.connection_count
        transactions = platform.sip_stack.transaction_count
        contacts = _contacts(rig)
        refresh = _hold(rig, endpoints, lapses, expires, hold) if hold > 0 and established else {}
        owned_after_hold = len(platform.owned_threads)
        refresh["rss_growth_kb_during_hold"] = _proc_status()["VmRSS"] - memory_after["VmRSS"]
        shutdown_started = time.perf_counter()
        platform.shutdown(timeout=max(60.0, count / 100))
        shutdown_seconds = time.perf_counter() - shutdown_started
        lingering = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
        threads_right_after = threading.active_count()
    finally:
        if not platform.is_terminated:
            platform.shutdown(timeout=max(60.0, count / 100))
    return UcmaResult(
        endpoints=count,
        established=established,
        failures=dict(failures),
        establish_seconds=seconds,
        registrations_per_second=established / seconds if seconds > 0 else 0.0,
        rss_kb_per_endpoint=(memory_after["VmRSS"] - memory_before["VmRSS"]) / count,
        peak_rss_kb_per_endpoint=(memory_after["VmHWM"] - memory_before["VmRSS"]) / count,
        gc_objects_per_endpoint=sum(grown.values()) / count,
        top_gc_types_per_endpoint={name: round(n / count, 2) for name, n in grown.most_common(12)},
        io_cpu_us_per_registration=1e6 * cpu.io_thread / count,
        process_cpu_us_per_registration=1e6 * cpu.process / count,
        kamailio_cpu_us_per_registration=1e6 * cpu.kamailio / count,
        others_busy_percent=cpu.others_percent,
        gc_collections=list(gc_watch.collections),
        gc_seconds=[round(s, 3) for s in gc_watch.seconds],
        owned_threads={"startup": owned_startup, "established": owned_established, "after_hold": owned_after_hold},
        process_threads={
            "before_platform": process_threads_before,
            "established": process_threads_established,
            "right_after_shutdown": threads_right_after,
            "after_shutdown": _settled_thread_count(),
        },
        threads_left_right_after_shutdown=lingering,
        connections=connections,
        live_transactions=transactions,
        registrar_contacts=contacts,
        refresh=refresh,
        shutdown_seconds=shutdown_seconds,
        contacts_after_shutdown=_contacts(rig),
        profile=_profile_text(profiler, count) if profiler is not None else None,
    )


# --- the SIPp side ---------------------------------------------------------------------------------------


@attrs.frozen
class SippResult:
    """One SIPp run: -m N registrations over one TCP connection."""

    calls: int
    successful: int
    failed: int
    exit_status: int | None
    seconds: float
    wall_seconds: float
    registrations_per_second: float
    sipp_cpu_us_per_registration: float
    kamailio_cpu_us_per_registration: float
    others_busy_percent: float
    registrar_contacts: int
    command: str
    error_tail: str


def _sipp_stat_row(stat_file: Path) -> dict[str, str]:
    """The last row of SIPp's -trace_stat file, by column name."""
    lines = [line for line in stat_file.read_text(errors="replace").splitlines() if line.strip()]
    if len(lines) < 2:
        return {}
    names = lines[0].rstrip(";").split(";")
    values = lines[-1].rstrip(";").split(";")
    return dict(zip(names, values, strict=False))


def _epoch(stamp: str) -> float:
    """SIPp's time stamps read 'date<TAB>time<TAB>epoch'."""
    return float(stamp.rsplit("\t", maxsplit=1)[-1])


def run_sipp(
    rig: KamailioRig, users: Sequence[str], *, calls: int, rate: int, limit: int, timeout: float
) -> SippResult:
    """SIPp makes `calls` registrations over one TCP connection, going round `users` (a user seen again
    replaces its binding); bounded by -timeout and killed by its pid."""
    binary = shutil.which("sipp")
    if binary is None:
        raise RuntimeError("sipp is not installed (tests/install_test_deps.sh installs it)")
    work = Path(tempfile.mkdtemp(prefix="ucma-bench-sipp-"))
    try:
        inject = work / "users.csv"
        with inject.open("w") as csv:
            csv.write("SEQUENTIAL\n")
            for user in users:
                password = rig.users[user]
                csv.write(f"{user};{password};[authentication username={user} password={password}]\n")
        stat_file = work / "stat.csv"
        command = [
            binary, f"{rig.host}:{rig.tcp_port}", "-sf", str(SCENARIO), "-inf", str(inject),
            "-key", "domain", rig.domain, "-key", "expires", "3600",
            "-t", "t1", "-i", rig.host, "-p", "0",
            "-m", str(calls), "-r", str(rate), "-rp", "1000", "-l", str(limit),
            "-nostdin", "-timeout", f"{timeout:g}s", "-timeout_error",
            "-trace_stat", "-stf", str(stat_file), "-fd", "1",
            "-trace_err", "-error_file", str(work / "errors.log"),
        ]  # fmt: skip
        cpu_start = CpuSample.take(None, rig.pid)
        with (work / "sipp.out").open("wb") as output:
            proc = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                cwd=work, start_new_session=True,
            )  # fmt: skip
        try:
            status: int | None = proc.wait(timeout + 10)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            if proc.poll() is None:
                for signum in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(proc.pid, signum)
                        proc.wait(5)
                        break
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        continue
        cpu_end = CpuSample.take(None, rig.pid)
        cpu = CpuUse.between(cpu_start, cpu_end)
        row = _sipp_stat_row(stat_file) if stat_file.exists() else {}
        successful = int(row.get("SuccessfulCall(C)", 0))
        failed = int(row.get("FailedCall(C)", 0))
        seconds = _epoch(row["CurrentTime"]) - _epoch(row["StartTime"]) if row else cpu.wall
        errors = (work / "errors.log").read_text(errors="replace") if (work / "errors.log").exists() else ""
        output_text = (work / "sipp.out").read_text(errors="replace")
        tail = "\n".join((errors + output_text if status else errors).splitlines()[-8:])
        shown = " ".join(
            Path(arg).name if arg.startswith(str(work)) or arg == str(SCENARIO) else arg for arg in command[1:]
        )
        return SippResult(
            calls=calls,
            successful=successful,
            failed=failed,
            exit_status=status,
            seconds=seconds,
            wall_seconds=cpu.wall,
            registrations_per_second=successful / seconds if seconds > 0 else 0.0,
            sipp_cpu_us_per_registration=1e6 * cpu.children / max(1, successful),
            kamailio_cpu_us_per_registration=1e6 * cpu.kamailio / max(1, successful),
            others_busy_percent=cpu.others_percent,
            registrar_contacts=_contacts(rig),
            command=f"sipp {shown}",
            error_tail=tail,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- driver ----------------------------------------------------------------------------------------------


@attrs.frozen
class Options:
    """The benchmark's settings, as parsed from the command line."""

    endpoints: tuple[int, ...]
    expires: int
    hold: float
    sipp_rate: int
    sipp_limit: int
    sipp_min_calls: int
    workers: int
    timeout: float
    profile: bool
    gc_threshold0: int | None
    skip_sipp: bool
    skip_hold: bool
    json_path: Path | None


def _rig_class() -> type[KamailioRig]:
    """The integration tests' rig; the repository root must be importable for that."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.integration.kamailio_rig.rig import KamailioRig

    return KamailioRig


def bench_users(count: int) -> dict[str, str]:
    """load00000.. with random passwords (never printed)."""
    return {f"load{i:05d}": secrets.token_hex(8) for i in range(count)}


def run_one(count: int, options: Options) -> dict[str, Any]:
    """ucma then SIPp for `count` endpoints on one private rig; everything is stopped on the way out."""
    users = bench_users(count)
    rig = _rig_class()(users=users, workers=options.workers, shm_mb=64 + count // 100, min_expires=5)
    result: dict[str, Any] = {"endpoints": count}
    try:
        rig.start()
        names = list(users)
        hold = 0.0 if options.skip_hold else options.hold
        ucma = run_ucma(
            rig,
            names,
            expires=options.expires,
            hold=hold,
            timeout=options.timeout,
            profile=options.profile,
            gc_threshold0=options.gc_threshold0,
        )
        result["ucma"] = attrs.asdict(ucma)
        if not options.skip_sipp:
            rig.restart()  # empty usrloc, same users and ports
            sipp = run_sipp(
                rig,
                names,
                calls=max(count, options.sipp_min_calls),
                rate=options.sipp_rate,
                limit=min(count, options.sipp_limit),
                timeout=max(60.0, options.timeout),
            )
            result["sipp"] = attrs.asdict(sipp)
            if sipp.registrations_per_second > 0:
                result["ratio"] = ucma.registrations_per_second / sipp.registrations_per_second
    finally:
        rig.close()
    return result


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def _rows(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) lines of one N, in table order."""
    ucma = result["ucma"]
    sipp = result.get("sipp")
    refresh = ucma["refresh"]
    rows = [
        ("ucma registrations/s", f"{ucma['registrations_per_second']:,.0f}"),
        ("  established / failed", f"{ucma['established']:,} / {sum(ucma['failures'].values()):,}"),
        ("  first begin -> last completion s", f"{ucma['establish_seconds']:.2f}"),
    ]
    if sipp is not None:
        rows.append(("SIPp registrations/s (-t t1)", f"{sipp['registrations_per_second']:,.0f}"))
        rows.append(("  SIPp ok / failed", f"{sipp['successful']:,} / {sipp['failed']:,}"))
    if "ratio" in result:
        rows.append(
            (f"ratio ucma/SIPp (>= {TARGET_RATIO})", f"{result['ratio']:.3f} {_mark(result['ratio'] >= TARGET_RATIO)}")
        )
    kb = ucma["rss_kb_per_endpoint"]
    rows += [
        (f"RSS KB per endpoint (<= {TARGET_KB_PER_ENDPOINT:g})", f"{kb:.1f} {_mark(kb <= TARGET_KB_PER_ENDPOINT)}"),
        ("  peak RSS KB per endpoint", f"{ucma['peak_rss_kb_per_endpoint']:.1f}"),
        ("  gc-tracked objects per endpoint", f"{ucma['gc_objects_per_endpoint']:.1f}"),
        ("I/O thread CPU us per registration", f"{ucma['io_cpu_us_per_registration']:.0f}"),
        ("  whole process CPU us per reg.", f"{ucma['process_cpu_us_per_registration']:.0f}"),
        ("  GC pauses s (gen0/1/2)", "/".join(f"{s:.2f}" for s in ucma["gc_seconds"])),
        ("  GC collections (gen0/1/2)", "/".join(str(n) for n in ucma["gc_collections"])),
        ("Kamailio CPU us per reg. (ucma)", f"{ucma['kamailio_cpu_us_per_registration']:.0f}"),
    ]
    if sipp is not None:
        rows += [
            ("Kamailio CPU us per reg. (SIPp)", f"{sipp['kamailio_cpu_us_per_registration']:.0f}"),
            ("SIPp CPU us per registration", f"{sipp['sipp_cpu_us_per_registration']:.0f}"),
        ]
    owned = ucma["owned_threads"]
    process = ucma["process_threads"]
    constant = owned["established"] == owned["after_hold"] and process["after_shutdown"] == process["before_platform"]
    rows += [
        ("platform threads start/est./held", f"{owned['startup']}/{owned['established']}/{owned['after_hold']}"),
        (
            "process threads before/est./after",
            f"{process['before_platform']}/{process['established']}/{process['after_shutdown']} {_mark(constant)}",
        ),
        ("  threads alive right after shutdown", str(process["right_after_shutdown"])),
        ("connections to the registrar", str(ucma["connections"])),
        ("registrar contacts after establish", f"{ucma['registrar_contacts']:,}"),
    ]
    if refresh.get("held_seconds"):
        lapsed = refresh["lapsed_endpoints"] + refresh["not_established_at_end"]
        lapse_ok = lapsed == 0 and refresh["registrar_min_contacts"] >= refresh["registrar_contacts_expected"]
        rows += [
            ("hold s / registration expires s", f"{refresh['held_seconds']:g} / {refresh['registration_expires']}"),
            (
                "  refresh REGISTERs accepted",
                f"{refresh['refresh_registers_accepted']:,} ({refresh['refreshes_per_endpoint']:.2f} per endpoint)",
            ),
            ("  401 challenges during hold", f"{refresh['challenges_401']:,}"),
            ("  lapsed endpoints (target 0)", f"{lapsed} {_mark(lapse_ok)}"),
            ("  registrar min contacts in hold", f"{refresh['registrar_min_contacts']:,}"),
            ("  RSS growth KB during hold", f"{refresh['rss_growth_kb_during_hold']:,}"),
        ]
    rows += [
        ("shutdown s (unregisters all)", f"{ucma['shutdown_seconds']:.2f}"),
        ("registrar contacts after shutdown", f"{ucma['contacts_after_shutdown']:,}"),
        (
            "others busy % (ucma / SIPp phase)",
            f"{ucma['others_busy_percent']:.0f}" + (f" / {sipp['others_busy_percent']:.0f}" if sipp else ""),
        ),
    ]
    return rows


def print_table(results: Sequence[Mapping[str, Any]]) -> None:
    """One column per endpoint count."""
    columns = [_rows(result) for result in results]
    labels = [label for label, _ in columns[0]]
    width = max(len(label) for label in labels) + 2
    cell = max(14, *(len(value) + 2 for rows in columns for _, value in rows))
    print()
    print("endpoints".ljust(width) + "".join(f"{result['endpoints']:,}".rjust(cell) for result in results))
    print("-" * (width + cell * len(results)))
    for label in labels:
        values = [dict(rows).get(label, "") for rows in columns]
        print(label.ljust(width) + "".join(value.rjust(cell) for value in values))
    for result in results:
        ucma = result["ucma"]
        for reason, count in ucma["failures"].items():
            print(f"N={result['endpoints']}: {count} x {reason}")
        for transition, count in ucma["refresh"].get("lapse_transitions", {}).items():
            print(f"N={result['endpoints']}: left ESTABLISHED -> {transition}: {count}")
        sipp = result.get("sipp")
        if sipp is not None and (sipp["failed"] or sipp["exit_status"] != 0) and sipp["error_tail"]:
            print(f"N={result['endpoints']}: SIPp exit {sipp['exit_status']}:\n{sipp['error_tail']}")
        if ucma["profile"]:
            print(f"\n--- N={result['endpoints']}: profile of the I/O thread during establish ---")
            print(ucma["profile"])


def _parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoints", default="1000,10000", help="comma-separated endpoint counts (1000,10000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 endpoints, 10 s registrations, < 1 min")
    parser.add_argument("--expires", type=int, help="registration interval asked for in the hold (30; quick: 10)")
    parser.add_argument("--hold", type=float, help="seconds to keep the endpoints registered (2 * expires + 5)")
    parser.add_argument("--sipp-rate", type=int, default=50_000, help="SIPp -r, calls per second (50000)")
    parser.add_argument(
        "--sipp-min-calls",
        type=int,
        default=2000,
        help="SIPp makes at least this many registrations, round the users, so a small N still gives a steady rate",
    )
    parser.add_argument("--sipp-limit", type=int, default=1000, help="SIPp -l, calls in flight at most (1000)")
    parser.add_argument("--workers", type=int, default=2, help="Kamailio UDP/TCP worker processes (2)")
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on one establish or SIPp run, s (300)")
    parser.add_argument("--profile", action="store_true", help="cProfile the platform's I/O thread during establish")
    parser.add_argument("--gc-threshold0", type=int, help="diagnostic: gc.set_threshold(N, 50, 100) during establish")
    parser.add_argument("--no-sipp", action="store_true", help="skip the SIPp peer")
    parser.add_argument("--no-hold", action="store_true", help="skip the steady-state refresh phase")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    counts = (200,) if args.quick else tuple(int(part) for part in str(args.endpoints).split(",") if part.strip())
    if not counts or min(counts) < 1 or max(counts) > 99_999:
        parser.error("--endpoints takes counts between 1 and 99999")
    expires = args.expires if args.expires is not None else (10 if args.quick else 30)
    if expires < 5:
        parser.error("--expires must be at least 5 (the rig's min_expires)")
    hold = args.hold if args.hold is not None else 2 * expires + (2 if args.quick else 5)
    return Options(
        endpoints=counts, expires=expires, hold=hold, sipp_rate=args.sipp_rate, sipp_limit=args.sipp_limit,
        sipp_min_calls=args.sipp_min_calls,
        workers=args.workers, timeout=args.timeout, profile=args.profile, gc_threshold0=args.gc_threshold0,
        skip_sipp=args.no_sipp, skip_hold=args.no_hold, json_path=args.json,
    )  # fmt: skip


def _terminate_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run through the finally blocks, so Kamailio, SIPp and the platform are stopped."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    options = _parse(argv)
    signal.signal(signal.SIGTERM, _terminate_cleanly)
    print(
        f"mass registration: endpoints {', '.join(f'{n:,}' for n in options.endpoints)}; "
        f"hold {options.hold:g} s at {options.expires} s registrations; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        + (f"; gc threshold0 {options.gc_threshold0}" if options.gc_threshold0 else ""),
        flush=True,
    )
    results: list[dict[str, Any]] = []
    for count in options.endpoints:
        print(f"... {count:,} endpoints", flush=True)
        results.append(run_one(count, options))
    print_table(results)
    if options.json_path is not None:
        document = {
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in attrs.asdict(options).items()},
            "python": sys.version,
            "cpus": os.cpu_count(),
            "results": results,
        }
        options.json_path.write_text(json.dumps(document, indent=2, default=str))
        print(f"\nwrote {options.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
