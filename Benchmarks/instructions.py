#!/usr/bin/env python3
"""User-space instructions per echoed line, counted by callgrind.

Wall-clock figures on a shared machine swing by 15 % or more; instructions
counted by valgrind's callgrind do not: the same binary, input and
environment give the same count on a busy machine. For each server this
script:

  1. starts it under `valgrind --tool=callgrind` on 127.0.0.1, port 0;
  2. opens one connection and echoes --warmup lines (64 bytes, LF included);
  3. zeroes the counters (`callgrind_control -z`);
  4. echoes --requests more lines, each verified byte for byte;
  5. dumps the counters (`callgrind_control -d`) and divides the total by
     --requests.

Only the server's user-space instructions are counted (valgrind does not
see the kernel), across all its threads. The dumps stay in --keep DIR for
`callgrind_annotate`. Standard library only; every wait has a deadline.

  Benchmarks/instructions.py [--servers echo-server,c,nio,python] [--requests 10000]
  Benchmarks/instructions.py --tls CERT KEY --servers echo-server-tls,c-tls
"""

import argparse
import glob
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def release_bin(package_path):
    out = subprocess.run(["swift", "build", "-c", "release", "--package-path", str(package_path), "--show-bin-path"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def servers(args):
    echo = args.echo_server_bin or os.path.join(release_bin(ROOT), "echo-server")
    table = {
        "echo-server": ("echo-server", [echo, "--mode", "threading"], echo),
        "c": ("C threads", [str(HERE / ".build-c" / "echo_server")], str(HERE / ".build-c" / "echo_server")),
        "nio": ("SwiftNIO", [os.path.join(release_bin(HERE), "nio-echo-server")],
                os.path.join(release_bin(HERE), "nio-echo-server")),
        "python": ("Python socketserver", [sys.executable, str(HERE / "python" / "echo_server.py")],
                   str(HERE / "python" / "echo_server.py")),
    }
    for item in filter(None, os.environ.get("BENCH_EXTRA", "").split(",")):
        name, path = item.split("=", 1)
        table[name] = (name, [path, "--mode", "threading"], path)
    if args.tls:
        cert, key = args.tls
        tls_c = str(HERE / ".build-c" / "tls_echo_server")
        table["echo-server-tls"] = ("echo-server TLS", [echo, "--mode", "threading", "--tls-cert", cert,
                                                        "--tls-key", key], echo)
        table["c-tls"] = ("C threads + OpenSSL", [tls_c, "--cert", cert, "--key", key], tls_c)
    return table


def read_listening(proc, deadline):
    """The port from the server's `listening on HOST:PORT` line."""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on .*:(\d+)", line)
        if m:
            return int(m.group(1))
    raise RuntimeError("server did not print its listening line in time")


def echo_lines(sock, reader, count, size):
    line = (b"x" * (size - 1)) + b"\n"
    for i in range(count):
        sock.sendall(line)
        got = b""
        while len(got) < size:
            chunk = sock.recv(size - len(got))
            if not chunk:
                raise RuntimeError(f"EOF after {i} lines")
            got += chunk
        if got != line:
            raise RuntimeError(f"wrong echo at line {i}")


def control(pid, flag, timeout):
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True, timeout=timeout)


def total_instructions(files):
    """The sum of the dumps' `summary:` (or `totals:`) lines: instructions executed."""
    total = 0
    for path in files:
        found = None
        with open(path) as f:
            for line in f:
                if line.startswith("summary:") or (found is None and line.startswith("totals:")):
                    found = int(line.split()[1])
        if found is None:
            raise RuntimeError(f"no totals in {path}")
        total += found
    return total


def measure(name, argv, args, keep):
    out_pattern = os.path.join(keep, f"{name}.%p")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_pattern}", "--vgdb=yes"] + argv + \
          ["--host", HOST, "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = read_listening(proc, time.monotonic() + args.start_timeout)
        sock = socket.create_connection((HOST, port), timeout=30)
        if args.tls:
            # The handshake and the session tickets happen during the warm-up.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock)
        with sock:
            echo_lines(sock, None, args.warmup, args.size)
            before = set(glob.glob(os.path.join(keep, f"{name}.{proc.pid}*")))
            control(proc.pid, "-z", 60)
            echo_lines(sock, None, args.requests, args.size)
            control(proc.pid, "-d", 60)
            deadline = time.monotonic() + 30
            dumps = []
            while time.monotonic() < deadline:
                dumps = sorted(set(glob.glob(os.path.join(keep, f"{name}.{proc.pid}*"))) - before)
                if dumps:
                    break
                time.sleep(0.05)  # bounded: the dump is written asynchronously
            if not dumps:
                raise RuntimeError("no callgrind dump appeared")
            time.sleep(0.2)  # bounded: let the dump file be complete
        return total_instructions(dumps) / args.requests, dumps
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="echo-server,c,nio,python")
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--requests", type=int, default=10000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--start-timeout", type=float, default=120)
    p.add_argument("--echo-server-bin", default=None)
    p.add_argument("--keep", default=None, help="folder for the callgrind dumps (default: a temporary one)")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None,
                   help="offer the servers echo-server-tls and c-tls (TLS 1.3 on these files); the client"
                        " speaks TLS to every server measured")
    args = p.parse_args()
    keep = args.keep or tempfile.mkdtemp(prefix="callgrind-")
    os.makedirs(keep, exist_ok=True)
    table = servers(args)
    rows = []
    failed = False
    for name in args.servers.split(","):
        title, argv, binary = table[name]
        if not os.path.exists(binary):
            log(f"{name}: {binary} is missing; skipped")
            continue
        log(f"{name}: counting {args.requests} lines under callgrind")
        try:
            per_line, dumps = measure(name, argv, args, keep)
            rows.append((title, per_line))
            log(f"{name}: {per_line:,.0f} instructions per line ({', '.join(dumps)})")
        except Exception as e:  # report and go on with the others
            failed = True
            rows.append((title, None))
            log(f"{name}: error: {e}")
    print(f"| server | user-space instructions per echoed {args.size}-byte line |")
    print("|---|---|")
    for title, per_line in rows:
        print(f"| {title} | {'error' if per_line is None else f'{per_line:,.0f}'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
