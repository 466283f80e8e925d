#!/usr/bin/env python3
"""Line echo server on Python's socketserver, a comparison point for the benchmarks.

    echo_server.py [--host 127.0.0.1] [--port 7007]

socketserver.ThreadingTCPServer (one thread per connection) with a
StreamRequestHandler echoing rfile.readline() to wfile.write(). Once
listening it prints exactly one line `listening on HOST:PORT` (the real port;
`--port 0` lets the kernel choose) and flushes stdout. Exits 0 on
SIGTERM/SIGINT.
"""

import argparse
import signal
import socketserver
import sys

MAX_LINE = 65536  # bytes, LF included; longer lines close the connection


class EchoHandler(socketserver.StreamRequestHandler):
    # TCP_NODELAY on accepted sockets, as SwiftNIO and the C server do.
    disable_nagle_algorithm = True

    def handle(self):
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                # Too long, or EOF in the middle of a line: echo servers only
                # answer complete lines.
                return
            self.wfile.write(line)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # Do not keep a list of handler threads to join at shutdown.
    block_on_close = False
    # listen() backlog, so that connection bursts (idle, churn) are not
    # limited by the default of 5.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A peer resetting the connection is not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    with Server((args.host, args.port), EchoHandler) as server:
        port = server.server_address[1]
        print(f"listening on {args.host}:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
