#!/usr/bin/env python3
"""Soak test for the sample servers (Python 3 standard library only).

Starts the built echo-server, chat-server and file-server (each with
--port 0, reading the `listening on HOST:PORT` line), runs a mixed load for
a bounded time, then checks that nothing was lost or corrupted and that the
servers gave back what they took (descriptors, threads, memory).

    python3 Tests/stress/soak.py --bin .build/debug --seconds 60

Exit status: 0 when every byte arrived intact and nothing leaked; 1 on any
lost or corrupted byte, protocol violation, server death or leak; 2 on a
usage or start-up error. Every process it started is stopped on every way
out (normal end, failure, Ctrl-C, SIGTERM). See Tests/stress/README.md.
"""

import argparse
import atexit
import hashlib
import os
import random
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
IO_TIMEOUT = 15.0  # every socket call of a well-behaved client
# Set once the servers are being killed: client errors after that are not news.
KILLED = threading.Event()


# --------------------------------------------------------------------------
# Servers


class Server:
    """One sample server process, in its own process group."""

    def __init__(self, name, bin_dir, args, workdir):
        self.name = name
        path = os.path.join(bin_dir, name)
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"{path} is not an executable (build first, or give --bin)")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess_popen([path, "--port", "0"] + args, self._stderr)
        self.port = self._read_port()

    def _read_port(self):
        fd = self.proc.stdout.fileno()
        data = b""
        deadline = time.monotonic() + 20
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} did not announce itself: {self.stderr_text()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"{self.name} closed stdout: {self.stderr_text()}")
                data += chunk
        line = data.split(b"\n", 1)[0].decode()
        if not line.startswith(f"listening on {HOST}:"):
            raise RuntimeError(f"{self.name}: unexpected first line {line!r}")
        return int(line.rsplit(":", 1)[1])

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def usage(self):
        """(fds, threads, rss_kib, peak_rss_kib) from /proc, or None if it is gone."""
        try:
            fds = len(os.listdir(f"/proc/{self.pid}/fd"))
            fields = {}
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    fields[key] = value.split()
            return fds, int(fields["Threads"][0]), int(fields["VmRSS"][0]), int(fields["VmHWM"][0])
        except (OSError, KeyError, IndexError, ValueError):
            return None

    def terminate(self, timeout=5.0):
        """SIGTERM, wait for the exit (contract: exit 0 within 3 s); SIGKILL the group if not."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout)
            except Exception:
                pass
        self.kill()
        return self.proc.returncode

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except Exception:
            pass
        for stream in (self.proc.stdout, self._stderr):
            try:
                stream.close()
            except Exception:
                pass


def subprocess_popen(argv, stderr):
    import subprocess

    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                            start_new_session=True, close_fds=True)


# --------------------------------------------------------------------------
# Bookkeeping shared by the client threads


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []  # failures: lost or corrupted bytes, protocol violations

    def add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def error(self, text):
        if KILLED.is_set():
            return
        with self.lock:
            self.errors.append(text)
        log(f"ERROR: {text}")

    def get(self, key):
        with self.lock:
            return self.counts.get(key, 0)


_log_lock = threading.Lock()


def log(text):
    with _log_lock:
        print(text, flush=True)


def connect(port, timeout=IO_TIMEOUT):
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset_close(s):
    """Close with RST: SO_LINGER {1, 0}."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


class LineReader:
    """Buffered line reader over a socket (every recv bounded by the socket time-out)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def line(self, limit=1 << 22):
        """The next line with its LF; b'' at EOF (or the unterminated rest)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                out = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return out
            if len(self.buf) > limit:
                raise ValueError("line over limit")
            chunk = self.sock.recv(65536)
            if not chunk:
                out = bytes(self.buf)
                self.buf.clear()
                return out
            self.buf += chunk

    def exactly(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(min(1 << 20, max(65536, n - len(self.buf))))
            if not chunk:
                raise EOFError(f"EOF after {len(self.buf)} of {n} bytes")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def random_line(rng, max_len):
    """Random bytes without LF, then LF."""
    n = rng.randrange(0, max_len + 1)
    data = rng.randbytes(n).replace(b"\n", b"\x00")
    return data + b"\n"


# --------------------------------------------------------------------------
# Well-behaved clients: every byte verified


def echo_client(port, seed, stop, stats):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            s = connect(port)
        except OSError as e:
            stats.error(f"echo: connect: {e}")
            return
        try:
            r = LineReader(s)
            for _ in range(rng.randrange(1, 100)):
                if stop.is_set():
                    break
                max_len = 65536 if rng.random() < 0.03 else 2048
                line = random_line(rng, max_len)
                s.sendall(line)
                got = r.line()
                if got != line:
                    stats.error(f"echo (seed {seed}): sent {len(line)} bytes, got {len(got)} back, different")
                    return
                stats.add("echo lines")
                stats.add("echo bytes", len(line))
            # The last line without LF comes back as it is, then EOF.
            tail = random_line(rng, 100)[:-1] or b"t"
            s.sendall(tail)
            s.shutdown(socket.SHUT_WR)
            got = r.line()
            if got != tail or r.line() != b"":
                stats.error(f"echo (seed {seed}): unterminated tail not echoed exactly")
                return
            stats.add("echo connections")
        except (OSError, ValueError) as e:
            stats.error(f"echo (seed {seed}): {e}")
            return
        finally:
            s.close()


NAME_OK = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."


class ChatMember:
    def __init__(self, port, nick):
        self.sock = connect(port)
        self.reader = LineReader(self.sock)
        self.nick = nick
        self.seen = {}  # sender nick -> next sequence number expected
        self.done_from = set()
        welcome = self.reader.line()
        if not welcome.startswith(b"* welcome, you are "):
            raise ProtocolError(f"chat: bad welcome {welcome[:80]!r}")
        self.send(f"/nick {nick}")
        # Skip others' traffic until our own confirmation.
        for _ in range(100000):
            line = self.reader.line()
            if not line:
                raise ProtocolError("chat: EOF before /nick confirmation")
            if line == f"* you are now {nick}\n".encode():
                return
        raise ProtocolError("chat: no /nick confirmation")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\n")


class ProtocolError(Exception):
    pass


def chat_group(port, gid, seed, stop, stats, group_size=3, rounds_per_session=60):
    """A group of clients in the one shared room: in each round every member
    sends one numbered line; every member must receive every other member's
    lines, complete and in order (lines from outside the group are skipped)."""
    rng = random.Random(seed)
    session = 0
    while not stop.is_set():
        session += 1
        members = []
        try:
            for i in range(group_size):
                members.append(ChatMember(port, f"g{gid}s{session}m{i}"))
            nicks = [m.nick for m in members]
            rounds = 0
            while rounds < rounds_per_session and not stop.is_set():
                payloads = {}
                for m in members:
                    text = "".join(rng.choice(NAME_OK + " \u00e9\u20ac") for _ in range(rng.randrange(1, 300)))
                    payloads[m.nick] = text
                    m.send(f"#{rounds} {text}")
                for m in members:
                    wanted = {n for n in nicks if n != m.nick}
                    got = set()
                    while got != wanted:
                        line = m.reader.line()
                        if not line:
                            raise ProtocolError(f"chat: {m.nick} disconnected")
                        text = line.decode("utf-8", errors="strict")[:-1]
                        sender, sep, body = text.partition(": ")
                        if not sep or sender not in wanted:
                            continue  # another group's line, or a notice
                        expected = f"#{rounds} {payloads[sender]}"
                        if body != expected or sender in got:
                            raise ProtocolError(f"chat: {m.nick} got {body[:60]!r} from {sender}, expected {expected[:60]!r}")
                        got.add(sender)
                        stats.add("chat lines delivered")
                rounds += 1
                stats.add("chat rounds")
            for m in members:
                m.send("/quit")
            for m in members:
                for _ in range(100000):
                    line = m.reader.line()
                    if not line:
                        raise ProtocolError(f"chat: {m.nick}: closed before * bye")
                    if line == b"* bye\n":
                        break
                stats.add("chat sessions")
        except (OSError, ProtocolError, UnicodeDecodeError) as e:
            stats.error(f"chat group {gid} session {session}: {e}")
            return
        finally:
            for m in members:
                m.sock.close()


def file_client(port, cid, seed, stop, stats):
    rng = random.Random(seed)
    n = 0
    while not stop.is_set():
        try:
            s = connect(port)
        except OSError as e:
            stats.error(f"file: connect: {e}")
            return
        try:
            r = LineReader(s)
            for _ in range(rng.randrange(1, 6)):
                if stop.is_set():
                    break
                n += 1
                name = f"soak-{cid}-{n}"
                size = 0 if rng.random() < 0.05 else rng.randrange(1, 4 << 20)
                body = rng.randbytes(size)
                digest = hashlib.sha256(body).hexdigest()
                s.sendall(f"PUT {name} {size}\n".encode())
                ready = r.line()
                if ready != b"READY\n":
                    stats.error(f"file: PUT {name}: no READY, got {ready!r}")
                    return
                s.sendall(body)
                reply = r.line()
                if reply != f"OK {size}\n".encode():
                    stats.error(f"file: PUT {name}: {reply!r}")
                    return
                s.sendall(f"GET {name}\n".encode())
                reply = r.line()
                if reply != f"OK {size}\n".encode():
                    stats.error(f"file: GET {name}: {reply!r}")
                    return
                got = r.exactly(size)
                if hashlib.sha256(got).hexdigest() != digest:
                    stats.error(f"file: GET {name}: content differs")
                    return
                stats.add("file round trips")
                stats.add("file bytes", 2 * size)
                if rng.random() < 0.2:
                    s.sendall(b"LIST\n")
                    head = r.line()
                    if not head.startswith(b"OK "):
                        stats.error(f"file: LIST: {head!r}")
                        return
                    names = [r.line().split(b" ")[0] for _ in range(int(head[3:]))]
                    if name.encode() not in names:
                        stats.error(f"file: LIST lacks {name}")
                        return
        except (OSError, EOFError, ValueError) as e:
            stats.error(f"file client {cid}: {e}")
            return
        finally:
            s.close()


# --------------------------------------------------------------------------
# Abusive clients: the servers must refuse them and go on


def expect_line_among(r, wanted, limit=100000):
    for _ in range(limit):
        line = r.line()
        if not line:
            return False
        if line == wanted:
            return True
    return False


def abuser(servers, aid, seed, stop, stats, max_idle):
    """Too-long lines, resets mid-request, slowloris idlers, random bytes."""
    rng = random.Random(seed)
    idle = []  # slowloris connections held open until the end
    echo, chat, files = servers["echo-server"].port, servers["chat-server"].port, servers["file-server"].port
    try:
        while not stop.is_set():
            kind = rng.choice(["long-echo", "long-chat", "long-file", "reset", "reset-download",
                               "drop-upload", "slowloris", "noise"])
            try:
                if kind == "long-echo":
                    with connect(echo) as s:
                        s.sendall(b"y" * 70000 + b"\n")
                        if not expect_line_among(LineReader(s), b"error: line too long\n", 1):
                            stats.error("abuse: echo-server did not refuse a 70000-byte line")
                elif kind == "long-chat":
                    with connect(chat) as s:
                        s.sendall(b"z" * 5000 + b"\n")
                        if not expect_line_among(LineReader(s), b"* error: line too long\n"):
                            stats.error("abuse: chat-server did not refuse a 5000-byte line")
                elif kind == "long-file":
                    with connect(files) as s:
                        s.sendall(b"GET " + b"w" * 2000 + b"\n")
                        if not expect_line_among(LineReader(s), b"ERR bad request\n", 1):
                            stats.error("abuse: file-server did not refuse a 2004-byte header")
                elif kind == "reset":
                    s = connect(rng.choice([echo, chat, files]))
                    s.sendall(rng.randbytes(rng.randrange(1, 3000)).replace(b"\n", b"."))
                    reset_close(s)
                elif kind == "reset-download":
                    s = connect(files)
                    s.sendall(b"GET soak-big\n")
                    r = LineReader(s)
                    head = r.line()
                    if not head.startswith(b"OK "):
                        stats.error(f"abuse: GET soak-big: {head!r}")
                    else:
                        r.exactly(rng.randrange(1, 1 << 20))
                    reset_close(s)
                elif kind == "drop-upload":
                    s = connect(files)
                    s.sendall(f"PUT abandoned-{aid}-{rng.randrange(1 << 30)} 1000000\n".encode())
                    if LineReader(s).line() != b"READY\n":
                        stats.error("abuse: PUT: no READY")
                    s.sendall(rng.randbytes(rng.randrange(0, 500000)))
                    (reset_close if rng.random() < 0.5 else socket.socket.close)(s)
                elif kind == "slowloris":
                    if len(idle) >= max_idle:
                        idle.pop(rng.randrange(len(idle))).close()
                    # Connects and idles (never reads): on chat-server it also stops
                    # reading the room, so its queue must stay bounded.
                    s = connect(rng.choice([echo, files, chat]))
                    s.sendall(b"GET" if rng.random() < 0.5 else b"")  # a line begun, never ended
                    idle.append(s)
                elif kind == "noise":
                    s = connect(rng.choice([echo, chat, files]))
                    s.settimeout(2)
                    try:
                        s.sendall(rng.randbytes(rng.randrange(1, 65536)))
                        s.shutdown(socket.SHUT_WR)
                        while s.recv(65536):
                            pass
                    except OSError:
                        pass  # the server may close or reset it: its right
                    s.close()
                stats.add(f"abuse {kind}")
            except OSError as e:
                # The well-behaved part of an abusive exchange failed (connect, READY).
                stats.error(f"abuse {kind}: {e}")
    finally:
        for s in idle:
            s.close()


# --------------------------------------------------------------------------


def measure_idle(server, baseline=None, timeout=20.0):
    """Usage once the server is idle: when `baseline` is given, waits (at most
    `timeout`) for fds and threads to come back to it."""
    deadline = time.monotonic() + timeout
    while True:
        u = server.usage()
        if u is None or baseline is None:
            return u
        if u[0] <= baseline[0] and u[1] <= baseline[1]:
            return u
        if time.monotonic() >= deadline:
            return u
        time.sleep(0.05)  # polling step of a bounded wait // deadline


def warm_up(servers):
    """One exchange with each server (so lazily made resources exist), and
    the big file the abusers download."""
    with connect(servers["echo-server"].port) as s:
        s.sendall(b"warm\n")
        if LineReader(s).line() != b"warm\n":
            raise RuntimeError("echo-server warm-up failed")
    with connect(servers["chat-server"].port) as s:
        if not LineReader(s).line().startswith(b"* welcome"):
            raise RuntimeError("chat-server warm-up failed")
    with connect(servers["file-server"].port) as s:
        r = LineReader(s)
        big = random.Random(0).randbytes(16 << 20)
        s.sendall(b"PUT soak-big %d\n" % len(big))
        if r.line() != b"READY\n":
            raise RuntimeError("file-server warm-up failed")
        s.sendall(big)
        if r.line() != b"OK %d\n" % len(big):
            raise RuntimeError("file-server warm-up upload failed")


def main():
    p = argparse.ArgumentParser(description="Soak the sample servers with mixed and abusive load.")
    p.add_argument("--bin", default=".build/debug", help="directory of the built samples (default .build/debug)")
    p.add_argument("--seconds", type=float, default=60, help="how long the load runs (default 60)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: time-based, printed)")
    p.add_argument("--echo-clients", type=int, default=8)
    p.add_argument("--chat-groups", type=int, default=3, help="groups of 3 chat clients")
    p.add_argument("--file-clients", type=int, default=2)
    p.add_argument("--abusers", type=int, default=4)
    p.add_argument("--slowloris", type=int, default=10, help="idle connections each abuser holds (default 10)")
    p.add_argument("--rss-growth-mib", type=float, default=64,
                   help="allowed RSS growth per server, start to end (default 64)")
    p.add_argument("--late-growth-mib", type=float, default=16,
                   help="allowed RSS at the end over the highest RSS of the first half of the run (default 16)")
    p.add_argument("--settle-seconds", type=float, default=20, help="how long fds/threads may take to come back")
    args = p.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())

    workdir = tempfile.mkdtemp(prefix="soak-")
    files_dir = os.path.join(workdir, "files")
    os.mkdir(files_dir)
    servers = {}
    stop = threading.Event()

    def cleanup():
        stop.set()
        KILLED.set()
        for srv in servers.values():
            srv.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    atexit.register(cleanup)

    def on_signal(signo, _frame):
        raise SystemExit(128 + signo)  # unwinds through finally; atexit kills the servers

    for signo in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signo, on_signal)

    try:
        try:
            servers["echo-server"] = Server("echo-server", args.bin, [], workdir)
            servers["chat-server"] = Server("chat-server", args.bin, [], workdir)
            servers["file-server"] = Server("file-server", args.bin, ["--dir", files_dir], workdir)
        except RuntimeError as e:
            print(f"soak: {e}", file=sys.stderr)
            return 2
        # The idle level: what a server runs right after announcing itself
        # (its signal watcher is started before the `listening on` line).
        idle_threads = {name: srv.usage()[1] for name, srv in servers.items()}
        stats = Stats()
        warm_up(servers)
        # Once the warm-up connections' threads have ended, the baseline.
        start = {name: measure_idle(srv, (1 << 30, idle_threads[name]), 10) for name, srv in servers.items()}
        log(f"soak: seed {seed}, {args.seconds:g} s; ports: "
            + ", ".join(f"{n} {s.port}" for n, s in servers.items()))

        threads = []

        def spawn(target, *a):
            t = threading.Thread(target=target, args=a, daemon=True)
            t.start()
            threads.append(t)

        for i in range(args.echo_clients):
            spawn(echo_client, servers["echo-server"].port, seed * 1000 + i, stop, stats)
        for g in range(args.chat_groups):
            spawn(chat_group, servers["chat-server"].port, g, seed * 1000 + 100 + g, stop, stats)
        for i in range(args.file_clients):
            spawn(file_client, servers["file-server"].port, i, seed * 1000 + 200 + i, stop, stats)
        for i in range(args.abusers):
            spawn(abuser, servers, i, seed * 1000 + 300 + i, stop, stats, args.slowloris)

        began = time.monotonic()
        deadline = began + args.seconds
        first_half_rss = {name: start[name][2] for name in servers}
        while time.monotonic() < deadline and not stats.errors:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))  # the soak's own pacing // deadline
            if not all(srv.alive() for srv in servers.values()):
                break
            if time.monotonic() - began <= args.seconds / 2:
                for name, srv in servers.items():
                    u = srv.usage()
                    if u:
                        first_half_rss[name] = max(first_half_rss[name], u[2])
        stop.set()
        stuck = []
        for t in threads:
            t.join(60)
            if t.is_alive():
                stuck.append(t.name)

        failures = list(stats.errors)
        if stuck:
            failures.append(f"{len(stuck)} client threads did not stop within 60 s")
        for name, srv in servers.items():
            if not srv.alive():
                failures.append(f"{name} died (exit {srv.proc.returncode}): {srv.stderr_text()[-500:]}")

        end = {name: measure_idle(srv, start[name], args.settle_seconds) for name, srv in servers.items()}
        leftovers = [n for n in os.listdir(files_dir) if n.startswith(".") or n.startswith("abandoned-")]
        if leftovers:
            failures.append(f"file-server left partial uploads behind: {leftovers[:5]}")

        # Report.
        c = stats.counts
        print()
        print(f"soak: {args.seconds:g} s, seed {seed}")
        print(f"  echo: {c.get('echo lines', 0)} lines ({c.get('echo bytes', 0)} bytes) verified "
              f"over {c.get('echo connections', 0)} connections")
        print(f"  chat: {c.get('chat rounds', 0)} rounds, {c.get('chat lines delivered', 0)} lines delivered "
              f"in order, {c.get('chat sessions', 0)} sessions")
        print(f"  file: {c.get('file round trips', 0)} upload+download round trips, "
              f"{c.get('file bytes', 0)} bytes verified by SHA-256")
        abuse = {k[6:]: v for k, v in sorted(c.items()) if k.startswith("abuse ")}
        print("  abuse: " + (", ".join(f"{k} {v}" for k, v in abuse.items()) or "none"))
        print(f"  errors: {len(stats.errors)}")
        print(f"  {'server':<13} {'fds start->end':>16} {'threads start->end':>20} {'RSS KiB start->end':>22}"
              f" {'peak RSS':>9}  stderr lines")
        for name, srv in servers.items():
            s, e = start[name], end[name]
            lines = srv.stderr_text().count("\n")
            if s is None or e is None:
                print(f"  {name:<13} (gone)")
                continue
            print(f"  {name:<13} {s[0]:>7} -> {e[0]:<6} {s[1]:>9} -> {e[1]:<8} {s[2]:>10} -> {e[2]:<9} {e[3]:>9}  {lines}")
            if e[0] > s[0]:
                failures.append(f"{name}: {e[0] - s[0]} descriptors not given back within {args.settle_seconds:g} s")
            if e[1] > s[1]:
                failures.append(f"{name}: {e[1] - s[1]} threads not ended within {args.settle_seconds:g} s")
            if e[2] - s[2] > args.rss_growth_mib * 1024:
                failures.append(f"{name}: RSS grew by {(e[2] - s[2]) / 1024:.1f} MiB (bound {args.rss_growth_mib:g})")
            if e[2] - first_half_rss[name] > args.late_growth_mib * 1024:
                failures.append(f"{name}: RSS still growing: {e[2]} KiB at the end, at most {first_half_rss[name]} KiB"
                                f" in the first half (bound +{args.late_growth_mib:g} MiB)")

        # The contract: SIGTERM, exit 0 within 3 seconds.
        for name, srv in servers.items():
            if srv.alive():
                t0 = time.monotonic()
                code = srv.terminate()
                if code != 0:
                    failures.append(f"{name}: exit status {code} after SIGTERM")
                elif time.monotonic() - t0 > 4:
                    failures.append(f"{name}: took {time.monotonic() - t0:.1f} s to exit after SIGTERM")

        if failures:
            print("FAIL")
            for f in failures[:30]:
                print(f"  - {f}")
            for name, srv in servers.items():
                # Peers resetting is the abusers' doing; anything else may be the cause.
                tail = [line for line in srv.stderr_text().splitlines()
                        if "Connection reset by peer" not in line and "Broken pipe" not in line][-15:]
                if tail:
                    print(f"  {name}'s stderr, beyond resets and broken pipes:")
                    for line in tail:
                        print(f"    {line}")
            return 1
        print("PASS")
        return 0
    except (KeyboardInterrupt, SystemExit):
        print("soak: interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
