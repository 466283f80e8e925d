#!/usr/bin/env python3
"""Echo-server benchmark driver: runs every (workload cell, server) pair and
prints a markdown table on stdout. Progress goes to stderr.

Normally started by ./run.sh, which builds everything first. See README.md for
what is measured and how. Standard library only.
"""

import argparse
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"  # all traffic stays on loopback


def log(msg=""):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------- servers

@dataclass
class Server:
    name: str
    title: str
    argv: list            # command without --host/--port
    binary: str           # must exist, else the server is skipped
    max_conns: int = None  # connections it serves at once (None: no limit)
    tls: bool = False      # serves TLS (only the TLS cells run against it)


def make_servers(args):
    echo = args.echo_server_bin
    nio = args.nio_bin
    cdir = Path(args.c_bin_dir)
    py = str(HERE / "python" / "echo_server.py")
    servers = [
        Server("echo-server", "echo-server", [echo, "--mode", "threading"], echo),
        Server("nio", "SwiftNIO", [nio], nio),
        Server("c", "C threads", [str(cdir / "echo_server")], str(cdir / "echo_server")),
        Server("python", "Python socketserver", [sys.executable, py], py),
        # Opt-in (--servers ...): the project's other modes. Forking runs at
        # most 40 children (maxChildren, as Python's ForkingMixIn); further
        # connections wait in the accept queue. Sync serves one at a time.
        Server("echo-server-forking", "echo-server (forking)", [echo, "--mode", "forking"], echo,
               max_conns=40),
        Server("echo-server-sync", "echo-server (sync)", [echo, "--mode", "sync"], echo,
               max_conns=1),
        # Opt-in: the cost of a cap's accounting (--max-connections 64, policy
        # wait) at rr C<=64 and churn C=256. Persistent rr connections beyond
        # the cap would wait for ever in the backlog (that is the policy), so
        # rr cells that need more than 64 show n/a; short churn connections
        # over the cap wait their turn.
        Server("echo-server-capped", "echo-server (cap 64)", [echo, "--mode", "threading", "--max-connections", "64"], echo,
               max_conns=64),
    ]
    # Opt-in: another build of echo-server, to measure a change before and
    # after in one run (--baseline-bin PATH, then --servers ...,echo-server-baseline).
    # BENCH_EXTRA="name=path,name=path": more echo-server builds to compare.
    for item in filter(None, os.environ.get("BENCH_EXTRA", "").split(",")):
        name, path = item.split("=", 1)
        servers.append(Server(name, name, [path, "--mode", "threading"], path))
    if args.baseline_bin:
        servers.append(Server("echo-server-baseline", "echo-server (baseline)",
                              [args.baseline_bin, "--mode", "threading"], args.baseline_bin))
    servers += make_tls_servers(args)
    return {s.name: s for s in servers}


def tls_files(args):
    """The certificate and key every TLS server uses (made by make_certificates)."""
    d = Path(args.tls_dir)
    return str(d / "cert.pem"), str(d / "key.pem")


def make_tls_servers(args):
    """The TLS servers: each serves the same certificate and key (one ECDSA
    P-256 pair made for the run) and speaks the same line echo over TLS."""
    cert, key = tls_files(args)
    echo = args.echo_server_bin
    nio = args.nio_tls_bin
    ctls = str(Path(args.c_bin_dir) / "tls_echo_server")
    py = str(HERE / "python" / "tls_echo_server.py")
    echo_tls = ["--tls-cert", cert, "--tls-key", key]
    other_tls = ["--cert", cert, "--key", key]
    servers = [
        Server("echo-server-tls", "echo-server TLS", [echo, "--mode", "threading"] + echo_tls, echo, tls=True),
        Server("nio-tls", "SwiftNIO + NIOSSL", [nio] + other_tls, nio, tls=True),
        Server("c-tls", "C threads + OpenSSL", [ctls] + other_tls, ctls, tls=True),
        Server("python-tls", "Python socketserver + ssl", [sys.executable, py] + other_tls, py, tls=True),
    ]
    # The TLS case of the opt-in builds above: NAME-tls.
    for item in filter(None, os.environ.get("BENCH_EXTRA", "").split(",")):
        name, path = item.split("=", 1)
        servers.append(Server(f"{name}-tls", f"{name} TLS", [path, "--mode", "threading"] + echo_tls, path,
                              tls=True))
    if args.baseline_bin:
        servers.append(Server("echo-server-baseline-tls", "echo-server TLS (baseline)",
                              [args.baseline_bin, "--mode", "threading"] + echo_tls, args.baseline_bin,
                              tls=True))
    return servers


DEFAULT_SERVERS = ["echo-server", "nio", "c", "python"]
BASELINE = "c"
# The TLS cells run against these (by default, when a TLS cell is chosen),
# with ratios to c-tls.
DEFAULT_TLS_SERVERS = ["echo-server-tls", "nio-tls", "c-tls", "python-tls"]
TLS_BASELINE = "c-tls"
SERVER_GROUPS = {"tls": DEFAULT_TLS_SERVERS}


# ------------------------------------------------------------- workloads

@dataclass
class Metric:
    key: str        # key in the loadgen result
    label: str      # row label
    kind: str       # formatting: rate, us, mbps, kib


@dataclass
class Cell:
    name: str
    title: str
    mode: str               # loadgen mode
    loadgen_args: list
    metrics: list
    conns: int              # concurrent connections it needs
    pinned: bool = False    # server and loadgen on CPU 0
    tls: bool = False       # a TLS cell: tls_loadgen, against the TLS servers only

    def conns_for(self, server):
        """Connections to use against server, or None if it cannot run the
        cell. The idle cell runs with fewer connections against a server
        that serves only a few at once (at least 16, else not at all).
        TLS cells run against TLS servers only, the others against plain
        servers only."""
        if server.tls != self.tls:
            return None
        limit = server.max_conns
        if limit is None or self.conns <= limit:
            return self.conns
        if self.mode == "churn" and server.name == "echo-server-capped":
            # Short connections over the cap wait in the backlog and are
            # served in turn: the cost of the cap's backpressure.
            return self.conns
        if self.mode == "idle" and limit >= 16:
            return limit
        return None


def make_cells(args):
    cells = []
    for c in (1, 16, 64, 256):
        cells.append(Cell(
            f"rr{c}", f"rr C={c}", "rr",
            ["--conns", str(c), "--threads", str(1 if c == 1 else args.loadgen_threads),
             "--size", "64"],
            [Metric("rps", f"rr C={c} req/s", "rate"),
             Metric("p50_us", f"rr C={c} p50 µs", "us"),
             Metric("p99_us", f"rr C={c} p99 µs", "us")],
            conns=c, pinned=(c == 1 and not args.no_pin)))
    cells.append(Cell("churn", "churn C=16", "churn",
                      ["--conns", "16", "--threads", "1", "--size", "64"],
                      [Metric("cps", "churn C=16 conn/s", "rate")], conns=16))
    # Opt-in: churn at C=256, against a cap of 64 (echo-server-capped):
    # connections beyond the cap wait in the backlog, then are served.
    cells.append(Cell("churn256", "churn C=256", "churn",
                      ["--conns", "256", "--threads", "1", "--size", "64"],
                      [Metric("cps", "churn C=256 conn/s", "rate")], conns=256))
    cells.append(Cell("bulk", "bulk 16 KiB lines", "bulk",
                      ["--line", "16384", "--window", str(4 << 20)],
                      [Metric("mbps", "bulk 16 KiB lines MB/s", "mbps")], conns=1))
    cells.append(Cell("idle", f"idle N={args.idle_conns}", "idle",
                      ["--concurrency", "128", "--size", "64"],
                      [Metric("kib_per_conn", f"idle N={args.idle_conns} KiB/conn", "kib")],
                      conns=args.idle_conns))
    # As many idle connections as one process may hold (the descriptor
    # limit), opened by several load generators, every one answered twice.
    cells.append(Cell("hold", f"hold N={args.hold_conns}", "idle",
                      ["--concurrency", "128", "--size", "64"],
                      [Metric("conns", f"hold N={args.hold_conns}: connections answered", "count"),
                       Metric("open_s", f"hold N={args.hold_conns}: seconds to open", "seconds"),
                       Metric("after_mib", f"hold N={args.hold_conns}: server RSS MiB", "mib")],
                      conns=args.hold_conns))
    # TLS (c/tls_loadgen.c): the same request/response and bulk workloads
    # over TLS 1.3, and full handshakes.
    for c in (1, 16, 64):
        cells.append(Cell(
            f"tls-rr{c}", f"TLS rr C={c}", "rr",
            ["--conns", str(c), "--threads", str(1 if c == 1 else args.loadgen_threads),
             "--size", "64"],
            [Metric("rps", f"TLS rr C={c} req/s", "rate"),
             Metric("p50_us", f"TLS rr C={c} p50 µs", "us"),
             Metric("p99_us", f"TLS rr C={c} p99 µs", "us")],
            conns=c, pinned=(c == 1 and not args.no_pin), tls=True))
    cells.append(Cell("tls-bulk", "TLS bulk 16 KiB lines", "bulk",
                      ["--line", "16384", "--window", str(4 << 20)],
                      [Metric("mbps", "TLS bulk 16 KiB lines MB/s", "mbps")], conns=1, tls=True))
    cells.append(Cell("tls-handshake", "TLS handshakes C=16", "handshake",
                      ["--conns", "16", "--threads", str(args.loadgen_threads), "--size", "64"],
                      [Metric("hps", "TLS handshakes C=16 /s", "rate"),
                       Metric("p50_us", "TLS handshake cycle C=16 p50 µs", "us")],
                      conns=16, tls=True))
    return {c.name: c for c in cells}


ALL_WORKLOADS = ["rr1", "rr16", "rr64", "rr256", "churn", "bulk", "idle"]
# Opt-in (--workloads tls, or some of them): the TLS rows, against the TLS
# servers (the default servers then include DEFAULT_TLS_SERVERS).
TLS_WORKLOADS = ["tls-rr1", "tls-rr16", "tls-rr64", "tls-bulk", "tls-handshake"]
# Opt-in (--workloads hold): minutes of setup, and the whole machine.
EXTRA_WORKLOADS = ["churn256", "hold"]
WORKLOAD_GROUPS = {"rr": ["rr1", "rr16", "rr64", "rr256"], "tls": TLS_WORKLOADS,
                   "tls-rr": ["tls-rr1", "tls-rr16", "tls-rr64"]}


# ------------------------------------------------------ process handling

class ServerProcess:
    """A started server: its own session/process group, stdout/stderr in
    temporary files. Always stop() it (try/finally)."""

    def __init__(self, server, pinned, workdir):
        self.server = server
        self.out = open(workdir / f"{server.name}.stdout", "w+b")
        self.err = open(workdir / f"{server.name}.stderr", "w+b")
        argv = list(server.argv) + ["--host", HOST, "--port", "0"]
        if pinned:
            argv = ["taskset", "-c", "0"] + argv  # taskset execs: same pid
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                         stderr=self.err, start_new_session=True)
        except OSError:
            self.out.close()
            self.err.close()
            raise
        self.port = None
        self.stopped = False

    def wait_listening(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # pread, not seek + read: the server writes through a descriptor
            # that shares this file's offset, so moving the offset would move
            # where its next write lands. (With PYTHONUNBUFFERED=1, Python's
            # print writes the line and its LF in two calls: a seek(0) between
            # them put the LF over the first byte.)
            data = os.pread(self.out.fileno(), 4096, 0)
            if b"\n" in data:
                first = data[:data.index(b"\n") + 1]
                text = first.decode(errors="replace").strip()
                if not text.startswith("listening on ") or ":" not in text:
                    raise RuntimeError(f"unexpected first line from {self.server.name}: {text!r}")
                self.port = int(text.rsplit(":", 1)[1])
                return self.port
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.server.name} exited with status {self.proc.returncode} "
                                   f"before listening: {self.stderr_tail()}")
            time.sleep(0.01)
        raise RuntimeError(f"{self.server.name} did not print 'listening on' within {timeout:.0f} s")

    def stderr_tail(self, n=300):
        # pread: the offset is shared with the server's stderr (see above).
        size = os.fstat(self.err.fileno()).st_size
        data = os.pread(self.err.fileno(), n, max(0, size - n))
        return data.decode(errors="replace").strip()

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM the server's process group, SIGKILL after 5 s. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    log(f"  note: {self.server.name} ignored SIGTERM for 5 s; killing it")
            # Forked children (forking mode) are in the same group; make sure
            # none survives the parent.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        finally:
            self.out.close()
            self.err.close()


def descendants(pid):
    """pid and all its descendants (scans /proc; children of forking servers)."""
    children = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Field 4 is the ppid; the command name (field 2) may contain spaces.
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def memory_kib(pid):
    """Proportional set size (Pss, KiB) of pid and its descendants, from
    smaps_rollup; falls back to VmRSS where smaps_rollup is missing. Pss splits
    pages shared between a forking server's processes instead of counting them
    once per process; for a single process the difference to Rss is only its
    share of shared libraries, which cancels out in a before/after delta."""
    total = 0
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
            continue
        except (OSError, StopIteration):
            pass
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def parse_result(stdout):
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return None


def run_timed(cell, port, args):
    argv = [args.tls_loadgen if cell.tls else args.loadgen, cell.mode, "--host", HOST, "--port", str(port),
            "--warmup", str(args.warmup), "--duration", str(args.duration),
            "--timeout", str(args.timeout)] + cell.loadgen_args
    if cell.pinned:
        argv = ["taskset", "-c", "0"] + argv
    limit = args.warmup + args.duration + args.timeout + 60
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=limit)
    result = parse_result(proc.stdout)
    if proc.returncode != 0 or result is None or result.get("errors"):
        detail = (result or {}).get("first_error") or proc.stderr.strip()[-300:]
        errors = (result or {}).get("errors", "?")
        raise RuntimeError(f"loadgen failed (exit {proc.returncode}, {errors} errors): {detail}")
    return result


def read_line(proc, timeout):
    """One stdout line of proc, or "" if none arrives within timeout s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            return proc.stdout.readline()
        if proc.poll() is not None:
            return proc.stdout.readline()
    return ""


def run_idle(cell, server_proc, args):
    """Idle memory: server Pss before and while N connections are open and
    idle, opened by one load generator per --idle-per-client connections.
    Stops the server itself (before the connections close)."""
    pid = server_proc.proc.pid
    time.sleep(0.3)  # let the fresh server settle
    before = memory_kib(pid)
    total = cell.conns_for(server_proc.server)
    per = max(1, args.idle_per_client)
    shares = [min(per, total - i) for i in range(0, total, per)]
    procs = []
    for n in shares:
        argv = [args.loadgen, "idle", "--host", HOST, "--port", str(server_proc.port),
                "--timeout", str(args.timeout), "--phase-timeout", str(args.idle_timeout)]
        argv += cell.loadgen_args + ["--conns", str(n)]
        procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    try:
        # Phase 1: wait for READY (all connections open, each echoed once).
        opened = []
        for proc in procs:
            line = read_line(proc, args.idle_timeout + 30)
            if not line.startswith("READY"):
                raise RuntimeError(f"idle connections not established: {loadgen_failure(proc, line)}")
            opened.append(json.loads(line.split(None, 1)[1]))
        time.sleep(0.5)  # let the server finish whatever it does per connection
        after = memory_kib(pid)
        # Phase 2: every connection echoes one more line.
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            line = read_line(proc, args.idle_timeout + 30)
            result = parse_result(line)
            if result is None or result.get("errors"):
                raise RuntimeError(f"idle phase 2 failed: {loadgen_failure(proc, line)}")
            results.append(result)
        if not server_proc.alive():
            raise RuntimeError(f"server exited during the run (status "
                               f"{server_proc.proc.returncode}): {server_proc.stderr_tail()}")
        # Stop the server while the connections are still open, then let the
        # load generators close them and exit.
        server_proc.stop()
        for proc in procs:
            proc.stdin.write("close\n")
            proc.stdin.flush()
        for proc in procs:
            proc.communicate(timeout=30)
    finally:
        if any(proc.poll() is None for proc in procs):
            server_proc.stop()  # first, for the reason above
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    conns = sum(o["conns"] for o in opened)
    result = dict(results[0])
    result.update(conns=sum(r["conns"] for r in results), open_s=max(o["open_s"] for o in opened),
                  echo_s=max(r.get("echo_s", 0) for r in results), errors=sum(r.get("errors", 0) for r in results),
                  before_kib=before, after_kib=after, after_mib=after / 1024,
                  kib_per_conn=(after - before) / conns)
    return result


def loadgen_failure(proc, line):
    """Best description of why the load generator failed."""
    out, err = "", ""
    if proc.poll() is None:
        proc.kill()
    try:
        out, err = proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError):
        pass
    result = parse_result((line or "") + (out or ""))
    return (result or {}).get("first_error") or (err or "").strip()[-300:] or "no output"


def measure(server, cell, args, workdir):
    """One sample: fresh server, one loadgen run, server stopped in all cases."""
    sp = ServerProcess(server, cell.pinned, workdir)
    try:
        sp.wait_listening()
        if cell.mode == "idle":
            return run_idle(cell, sp, args)  # checks and stops the server itself
        result = run_timed(cell, sp.port, args)
        if not sp.alive():
            raise RuntimeError(f"server exited during the run (status {sp.proc.returncode}): "
                               f"{sp.stderr_tail()}")
        return result
    except subprocess.TimeoutExpired:
        raise RuntimeError("load generator did not finish in time")
    finally:
        sp.stop()


# ------------------------------------------------------------ formatting

def fmt(value, kind):
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value / 1000:.1f}k" if value >= 10000 else f"{value:,.0f}"
    if kind == "us":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if kind == "mbps":
        return f"{value:,.0f}"
    if kind == "kib":
        return f"{value:.1f}"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "seconds":
        return f"{value:.2f}"
    if kind == "mib":
        return f"{value:,.0f}"
    return str(value)


def summarize(samples, kind, baseline_median):
    if not samples:
        return None, "–"
    med = statistics.median(samples)
    text = fmt(med, kind)
    if len(samples) > 1:
        text += f" ({fmt(min(samples), kind)}–{fmt(max(samples), kind)})"
    if baseline_median:
        text += f" ×{med / baseline_median:.2f}"
    return med, text


def render(servers, cells, results, failures, args, notes):
    """results[(cell, server)] = list of result dicts. The plain cells with
    the plain servers, then (if any) the TLS cells with the TLS servers."""
    out = []
    mode = "quick" if args.quick else "full"
    out.append(f"## Echo server benchmark ({mode} mode)")
    out.append("")
    out.append(f"{args.reps} repetition(s), {args.warmup:g} s warmup + {args.duration:g} s "
               f"per timed measurement; {os.cpu_count()} CPUs, Linux {os.uname().release}; "
               f"{time.strftime('%Y-%m-%d %H:%M')}.")
    plain_servers = [s for s in servers if not s.tls]
    plain_cells = [c for c in cells if not c.tls]
    if plain_servers and plain_cells:
        out.append("")
        out += render_table(plain_servers, plain_cells, results, failures, args, BASELINE,
                            "the C server")
    tls_servers = [s for s in servers if s.tls]
    tls_cells = [c for c in cells if c.tls]
    if tls_servers and tls_cells:
        out.append("")
        out.append("### TLS")
        out.append("")
        out.append(tls_description(tls_servers, tls_cells, results, args))
        out.append("")
        out += render_table(tls_servers, tls_cells, results, failures, args, TLS_BASELINE,
                            "the C TLS server (C threads + OpenSSL)")
    if notes:
        out.append("")
        for n in notes:
            out.append(f"- {n}")
    return "\n".join(out) + "\n"


def tls_description(servers, cells, results, args):
    """What the TLS rows negotiated, as the load generator saw it: the same
    for every server, or the differences spelled out; and the session
    tickets each server sent per connection."""
    seen = {}
    tickets = {}
    for s in servers:
        for c in cells:
            for r in results.get((c.name, s.name), []):
                key = (r.get("tls", "?"), r.get("cipher", "?"), r.get("group", "?"))
                seen.setdefault(key, set()).add(s.title)
                if isinstance(r.get("tickets"), (int, float)):
                    tickets.setdefault(s.title, []).append(r["tickets"])
    text = ("Every server serves the same ECDSA P-256 certificate and key, made for the run "
            "with the `openssl` CLI; the load generator (`c/tls_loadgen.c`) offers TLS 1.3 with one "
            "cipher suite and one group only, and never resumes a session (every handshake is full). ")
    if not seen:
        return text + "Nothing was negotiated (no TLS measurement succeeded)."
    if len(seen) == 1:
        (v, c, g), = seen
        text += f"Negotiated with every server: {v}, {c}, {g}."
    else:
        text += "Negotiated: " + "; ".join(f"{v}, {c}, {g} ({', '.join(sorted(names))})"
                                           for (v, c, g), names in sorted(seen.items())) + "."
    if tickets:
        text += (" Session tickets sent per connection (read, never used): "
                 + ", ".join(f"{name} {statistics.median(t):g}" for name, t in tickets.items()) + ".")
    return text


def render_table(servers, cells, results, failures, args, baseline_name, baseline_title):
    """The markdown lines of one table, its legend and its load generator
    CPU table, with ratios to baseline_name."""
    out = []
    header = ["workload"] + [s.title for s in servers]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    baseline = next((s for s in servers if s.name == baseline_name), None)
    for cell in cells:
        for m in cell.metrics:
            base_med = None
            if baseline:
                base_samples = [r[m.key] for r in results.get((cell.name, baseline_name), [])]
                base_med = statistics.median(base_samples) if base_samples else None
            row = [m.label]
            for s in servers:
                if cell.conns_for(s) is None:
                    row.append("n/a")
                    continue
                samples = [r[m.key] for r in results.get((cell.name, s.name), [])]
                failed = failures.get((cell.name, s.name), 0)
                _, text = summarize(samples, m.kind, base_med)
                if failed:
                    text = "**error**" if not samples else f"{text} **({failed} failed)**"
                if cell.conns_for(s) != cell.conns:
                    text += f" (N={cell.conns_for(s)})"
                row.append(text)
            out.append("| " + " | ".join(row) + " |")
    out.append("")
    legend = ("Each cell: median (min–max over the repetitions; omitted with one repetition) "
              f"and ×ratio of medians to {baseline_title}. Higher is better for req/s, "
              + ("handshakes/s" if any(c.tls for c in cells) else "conn/s")
              + " and MB/s; lower is better for µs" + ("" if any(c.tls for c in cells) else " and KiB/conn")
              + ". "
              + ("rr C=1 ran with server and load generator pinned to CPU 0."
                 if not args.no_pin else "Nothing was pinned (--no-pin)."))
    limited = [s for s in servers if s.max_conns is not None]
    if limited:
        legend += (" n/a: the server serves fewer connections at once than the cell needs ("
                   + ", ".join(f"{s.title}: {s.max_conns}" for s in limited) + ").")
    out.append(legend)
    # Load generator CPU use, to see whether it was the bottleneck.
    cpu_cells = [c for c in cells if c.mode != "idle"]
    if cpu_cells:
        out.append("")
        out.append("Load generator CPU use over the measured window (median, % of one CPU):")
        out.append("")
        out.append("| workload | " + " | ".join(s.title for s in servers) + " |")
        out.append("|" + "---|" * (len(servers) + 1))
        for cell in cpu_cells:
            row = [cell.title]
            for s in servers:
                samples = [r["cpu_pct"] for r in results.get((cell.name, s.name), [])
                           if "cpu_pct" in r]
                row.append(f"{statistics.median(samples):.0f}%" if samples else "–")
            out.append("| " + " | ".join(row) + " |")
    return out


# ------------------------------------------------------------------ main

def env(name, default=None):
    v = os.environ.get(name)
    return default if v is None or v == "" else v


def parse_args():
    p = argparse.ArgumentParser(
        description="Run the echo-server comparison and print a markdown table.",
        epilog="Environment variables BENCH_QUICK=1, BENCH_SERVERS, BENCH_WORKLOADS, BENCH_REPS, "
               "BENCH_DURATION, BENCH_WARMUP, BENCH_IDLE_CONNS and BENCH_OUT set the defaults of "
               "the corresponding options. run.sh (which builds everything first) also takes "
               "--no-build (or BENCH_NO_BUILD=1) and BENCH_BUILD_JOBS=N.")
    p.add_argument("--quick", action="store_true", default=env("BENCH_QUICK", "0") not in ("0", "no", "false"),
                   help="smoke-test mode: 1 repetition, ~1 s per measurement")
    p.add_argument("--servers", default=env("BENCH_SERVERS"),
                   help="comma-separated servers (default: " + ",".join(DEFAULT_SERVERS)
                        + ", and " + ",".join(DEFAULT_TLS_SERVERS) + " (or tls) when a TLS workload "
                        "is chosen; also available: echo-server-forking, echo-server-sync, "
                        "echo-server-capped)")
    p.add_argument("--workloads", default=env("BENCH_WORKLOADS", ",".join(ALL_WORKLOADS)),
                   help="comma-separated cells: rr1,rr16,rr64,rr256 (or rr),churn,bulk,idle "
                        "(default: these), hold; TLS: tls-rr1,tls-rr16,tls-rr64 (or tls-rr),"
                        "tls-bulk,tls-handshake (or tls for all five)")
    p.add_argument("--reps", type=int, default=env("BENCH_REPS"), help="repetitions (full 3, quick 1)")
    p.add_argument("--duration", type=float, default=env("BENCH_DURATION"),
                   help="measured seconds per timed measurement (full 4, quick 1)")
    p.add_argument("--warmup", type=float, default=env("BENCH_WARMUP"),
                   help="unmeasured warmup seconds before each (full 1, quick 0.3)")
    p.add_argument("--idle-conns", type=int, default=int(env("BENCH_IDLE_CONNS", "10000")),
                   help="idle connections (default %(default)s)")
    p.add_argument("--out", default=env("BENCH_OUT"), help="also write the markdown to this file")
    p.add_argument("--json", help="also write all raw samples as JSON to this file")
    p.add_argument("--no-pin", action="store_true", help="do not pin rr C=1 to CPU 0")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="longest a single request may stay unanswered (s)")
    p.add_argument("--hold-conns", type=int, default=int(env("BENCH_HOLD_CONNS", "19000")),
                   help="connections of the hold cell (--workloads hold; default %(default)s)")
    p.add_argument("--idle-per-client", type=int, default=5000,
                   help="connections per load generator process in the idle cells (default %(default)s)")
    p.add_argument("--idle-timeout", type=float, default=60.0,
                   help="longest each idle phase (open all, echo all) may take (s)")
    p.add_argument("--loadgen-threads", type=int, default=max(1, min(os.cpu_count() or 1, 4)),
                   help="epoll threads of the load generator for rr C>1 (default: CPUs, max 4)")
    p.add_argument("--echo-server-bin", default=str(ROOT / ".build" / "release" / "echo-server"),
                   help="the project's echo-server (empty: skip it); set by run.sh")
    p.add_argument("--baseline-bin", default=env("BENCH_BASELINE_BIN", ""),
                   help="another echo-server build, offered as server echo-server-baseline")
    p.add_argument("--nio-bin", default=str(HERE / ".build" / "release" / "nio-echo-server"),
                   help="nio-echo-server (empty: skip it); set by run.sh")
    p.add_argument("--nio-tls-bin", default=str(HERE / ".build" / "release" / "nio-tls-echo-server"),
                   help="nio-tls-echo-server (empty: skip it); set by run.sh")
    p.add_argument("--tls-dir", default=None,
                   help="folder for the run's certificate and key (default: C-BIN-DIR/tls)")
    p.add_argument("--c-bin-dir", default=str(HERE / ".build-c"),
                   help="folder of the compiled loadgen and echo_server; set by run.sh")
    args = p.parse_args()
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 1.0 if args.quick else 4.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    args.reps, args.duration, args.warmup = int(args.reps), float(args.duration), float(args.warmup)
    args.loadgen = str(Path(args.c_bin_dir) / "loadgen")
    args.tls_loadgen = str(Path(args.c_bin_dir) / "tls_loadgen")
    if args.tls_dir is None:
        args.tls_dir = str(Path(args.c_bin_dir) / "tls")
    return args


def make_certificates(args):
    """A new self-signed ECDSA P-256 certificate and its key (PKCS#8 PEM) in
    args.tls_dir, for every TLS server of the run; None, or why not."""
    openssl = shutil.which("openssl")
    if not openssl:
        return "the openssl command is missing"
    d = Path(args.tls_dir)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = tls_files(args)
    argv = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "openssl req did not finish within 30 s"
    if proc.returncode != 0:
        return f"openssl req failed: {proc.stderr.strip()[-300:]}"
    return None


def prepare_limits(args, notes):
    """Raise RLIMIT_NOFILE (inherited by servers and load generator) and cap
    the idle connection count to what the fd and thread limits allow."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 25000 if hard == resource.RLIM_INFINITY else min(25000, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    cap = soft - 500
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        threads_max = int(Path("/proc/sys/kernel/threads-max").read_text())
        running = sum(len(os.listdir(f"/proc/{p}/task")) for p in os.listdir("/proc")
                      if p.isdigit() and os.path.isdir(f"/proc/{p}/task"))
        cap = min(cap, min(pid_max, threads_max) - running - 2000)
    except OSError:
        pass
    if args.idle_conns > cap:
        note = (f"idle connections capped at {cap} (from {args.idle_conns}) by "
                f"RLIMIT_NOFILE={soft} / thread limits")
        log("note: " + note)
        notes.append(note)
        args.idle_conns = max(1, cap)
    if args.hold_conns > cap:
        note = f"hold connections capped at {cap} (from {args.hold_conns}) by RLIMIT_NOFILE={soft} / thread limits"
        log("note: " + note)
        notes.append(note)
        args.hold_conns = max(1, cap)
    try:
        if Path("/proc/sys/net/ipv4/tcp_tw_reuse").read_text().strip() == "0":
            log("warning: net.ipv4.tcp_tw_reuse=0: churn may run out of local ports "
                "(TIME_WAIT); set it to 2 (the default)")
    except OSError:
        pass


def choose(args, all_servers, all_cells):
    """The chosen cells (in table order) and server names, from --workloads
    and --servers; exits on an unknown name."""
    workloads = []
    for w in (w.strip() for w in args.workloads.split(",") if w.strip()):
        for name in WORKLOAD_GROUPS.get(w, [w]):
            if name not in all_cells:
                sys.exit(f"unknown workload {w}; known: "
                         f"{', '.join(ALL_WORKLOADS + EXTRA_WORKLOADS + TLS_WORKLOADS)}, rr, tls-rr, tls")
            if name not in workloads:
                workloads.append(name)
    cells = [all_cells[w] for w in ALL_WORKLOADS + EXTRA_WORKLOADS + TLS_WORKLOADS if w in workloads]
    if args.servers is None:
        # The default: the plain servers for plain cells, the TLS ones for TLS cells.
        wanted = ([] if all(c.tls for c in cells) else list(DEFAULT_SERVERS)) + \
                 (list(DEFAULT_TLS_SERVERS) if any(c.tls for c in cells) else [])
    else:
        wanted = []
        for name in (s.strip() for s in args.servers.split(",") if s.strip()):
            for n in SERVER_GROUPS.get(name, [name]):
                if n not in wanted:
                    wanted.append(n)
    unknown = [s for s in wanted if s not in all_servers]
    if unknown:
        sys.exit(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(all_servers)}, tls")
    return cells, wanted


def main():
    if "--wants-nio-tls" in sys.argv:
        # For run.sh: exit 0 if this selection runs nio-tls (which needs
        # NIOSSL built), 1 if not.
        sys.argv.remove("--wants-nio-tls")
        args = parse_args()
        cells, wanted = choose(args, make_servers(args), make_cells(args))
        return 0 if "nio-tls" in wanted and any(c.tls for c in cells) else 1
    args = parse_args()
    notes = []
    prepare_limits(args, notes)
    all_servers = make_servers(args)
    all_cells = make_cells(args)
    cells, wanted = choose(args, all_servers, all_cells)

    tools = []
    if any(not c.tls for c in cells):
        tools.append(args.loadgen)
    if any(c.tls for c in cells):
        tools.append(args.tls_loadgen)
    for tool in tools:
        if not os.access(tool, os.X_OK):
            sys.exit(f"{tool} is missing: run ./run.sh (it builds everything)")
    if any(c.pinned for c in cells) and not shutil.which("taskset"):
        log("warning: taskset not found (util-linux): rr C=1 runs unpinned")
        notes.append("taskset missing: rr C=1 ran unpinned")
        for c in cells:
            c.pinned = False
        args.no_pin = True

    servers = []
    for name in wanted:
        s = all_servers[name]
        if not s.binary or not os.path.exists(s.binary):
            log(f"note: skipping {name}: {s.binary or 'binary'} not found")
            notes.append(f"{s.title}: skipped (binary not found)")
            continue
        servers.append(s)
    if any(s.tls for s in servers):
        why = make_certificates(args)
        if why:
            log(f"note: skipping the TLS servers: {why}")
            notes.append(f"TLS servers skipped: {why}")
            servers = [s for s in servers if not s.tls]
        else:
            log(f"certificate and key (ECDSA P-256) for the TLS servers: {args.tls_dir}")
    if not servers:
        sys.exit("no server to benchmark")
    names = [s.name for s in servers]
    if any(not c.tls for c in cells) and any(not s.tls for s in servers) and BASELINE not in names:
        notes.append("no ratios: the C server (baseline) was not run")
    if any(c.tls for c in cells) and any(s.tls for s in servers) and TLS_BASELINE not in names:
        notes.append("no TLS ratios: the C TLS server (c-tls, the TLS baseline) was not run")
    pairs = sum(1 for c in cells for s in servers if c.conns_for(s) is not None)
    if pairs == 0:
        sys.exit("nothing to run: TLS workloads run against TLS servers only (e.g. --servers tls), "
                 "the others against plain servers only")

    results, failures, raw = {}, {}, []
    total = sum(1 for _ in range(args.reps) for c in cells for s in servers
                if c.conns_for(s) is not None)
    done = 0
    started = time.monotonic()
    log(f"running {total} measurements: servers {', '.join(s.name for s in servers)}; "
        f"workloads {', '.join(c.name for c in cells)}; {args.reps} rep(s)")
    with tempfile.TemporaryDirectory(prefix="echo-bench-") as tmp:
        workdir = Path(tmp)
        for rep in range(args.reps):
            # Interleave: for each repetition, for each cell, each server in turn
            # (rotating who goes first, so no server is always first after a pause).
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for cell in cells:
                for server in order:
                    if cell.conns_for(server) is None:
                        continue
                    done += 1
                    prefix = f"[{done}/{total}] rep {rep + 1} {cell.title:<18} {server.name:<12}"
                    try:
                        r = measure(server, cell, args, workdir)
                    except Exception as e:  # keep going; reported in the table
                        failures[(cell.name, server.name)] = failures.get((cell.name, server.name), 0) + 1
                        raw.append({"rep": rep, "cell": cell.name, "server": server.name, "error": str(e)})
                        log(f"{prefix} ERROR: {e}")
                        continue
                    results.setdefault((cell.name, server.name), []).append(r)
                    raw.append({"rep": rep, "cell": cell.name, "server": server.name, **r})
                    shown = "  ".join(f"{m.key}={fmt(r[m.key], m.kind)}" for m in cell.metrics)
                    cpu = f"  loadgen cpu {r['cpu_pct']:.0f}%" if "cpu_pct" in r else ""
                    if "before_kib" in r:
                        cpu = (f"  (Pss {r['before_kib']} -> {r['after_kib']} KiB; opened in "
                               f"{r['open_s']:.1f} s, echoed in {r['echo_s']:.1f} s)")
                    log(f"{prefix} {shown}{cpu}")
    log(f"done in {time.monotonic() - started:.0f} s")

    table = render(servers, cells, results, failures, args, notes)
    sys.stdout.write(table)
    sys.stdout.flush()
    if args.out:
        Path(args.out).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
    if failures:
        log(f"FAILED: {sum(failures.values())} measurement(s) had errors (see above)")
        return 1
    return 0


if __name__ == "__main__":
    # SIGTERM/SIGHUP: unwind through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
