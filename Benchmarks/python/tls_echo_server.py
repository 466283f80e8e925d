#!/usr/bin/env python3
"""TLS line echo server on Python's socketserver and ssl, a comparison point for the benchmarks.

    tls_echo_server.py --cert FILE --key FILE [--host 127.0.0.1] [--port 7007]

The plain echo_server.py (socketserver.ThreadingTCPServer, one thread per
connection, a StreamRequestHandler echoing rfile.readline() to wfile.write())
with each accepted socket wrapped by ssl.SSLContext(PROTOCOL_TLS_SERVER)
.wrap_socket(server_side=True). The handshake runs in the handler's own
thread (setup()), not in the accept loop: wrapping the listening socket
instead would make accept() run every handshake on the serving thread, one
at a time. The context is Python's default server context with the
certificate and key loaded: TLS 1.2 at least, OpenSSL's default session
cache and two TLS 1.3 session tickets per handshake, as the other servers.
Once listening it prints exactly one line `listening on HOST:PORT` (the real
port; `--port 0` lets the kernel choose) and flushes stdout. Exits 0 on
SIGTERM/SIGINT.
"""

import argparse
import signal
import socketserver
import ssl
import sys

MAX_LINE = 65536  # bytes, LF included; longer lines close the connection


class EchoHandler(socketserver.StreamRequestHandler):
    # TCP_NODELAY on accepted sockets, as SwiftNIO and the C server do.
    disable_nagle_algorithm = True

    def setup(self):
        # The handshake, here on this connection's thread; the base class
        # then makes rfile/wfile on the TLS socket (and sets TCP_NODELAY).
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        self.at_eof = False
        super().setup()

    def handle(self):
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                self.at_eof = True
                return
            if len(line) > MAX_LINE or not line.endswith(b"\n"):
                # Too long, or EOF in the middle of a line: echo servers only
                # answer complete lines.
                return
            self.wfile.write(line)

    def finish(self):
        super().finish()
        # At the peer's end of the session, answer its close_notify with
        # ours (as the C and Swift servers do). Only then: unwrap() waits
        # for the peer's close_notify, which, at EOF, has come or never will.
        try:
            if self.at_eof:
                self.request.unwrap()
        except (OSError, ValueError):
            pass
        finally:
            # socketserver shuts down the socket it accepted, which
            # wrap_socket detached: close the TLS one now, not at collection.
            self.request.close()


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    # Do not keep a list of handler threads to join at shutdown.
    block_on_close = False
    # listen() backlog, so that connection bursts (handshakes) are not
    # limited by the default of 5.
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A peer resetting the connection, or going away in the handshake,
        # is not worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    parser.add_argument("--cert", required=True, help="certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="private key (PEM)")
    args = parser.parse_args()

    def stop(signum, frame):
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)

    with Server((args.host, args.port), EchoHandler) as server:
        server.tls = tls
        port = server.server_address[1]
        print(f"listening on {args.host}:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
