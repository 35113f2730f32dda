#!/usr/bin/env python3
"""A small HTTP file server for testing download_dataset.sh scripts on 127.0.0.1.

Python's http.server ignores Range requests, so a resumed download cannot be tested against it.
This one honours `Range: bytes=N-` (206 Partial Content) and can cut a connection on purpose:

    python3 tools/range_http_server.py DIR [--cut-after BYTES]

serves the files of DIR on 127.0.0.1 at a free port and prints `PORT <n>` as its first line of
stdout. With --cut-after N, the first GET of each file sends N bytes of the body and then closes the
connection (a dropped download); every later request is served in full, so `curl -C -` can resume.
It serves only loopback and only files directly inside DIR. Stop it with SIGTERM / SIGINT.
Every request is logged to stderr as `<method> <path> range=<header> status=<code>` so tests can
assert that a resume really asked for a byte range.
"""

import argparse
import http.server
import os
import re
import sys
import threading


def make_handler(root: str, cut_after: int | None):
    cut_done: set[str] = set()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, code="-", size="-"):  # _serve logs each request itself
            pass

        def log_message(self, fmt, *args):  # one line per request, to stderr
            sys.stderr.write(fmt % args + "\n")
            sys.stderr.flush()

        def _file(self):
            name = self.path.split("?", 1)[0].lstrip("/")
            path = os.path.join(root, name)
            if "/" in name or not name or not os.path.isfile(path):
                return None
            return path

        def do_HEAD(self):
            self._serve(body=False)

        def do_GET(self):
            self._serve(body=True)

        def _serve(self, body: bool):
            path = self._file()
            rng = self.headers.get("Range")
            if path is None:
                self.log_message("%s %s range=%s status=404", self.command, self.path, rng)
                self.send_error(404)
                return
            size = os.path.getsize(path)
            start = 0
            status = 200
            m = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if m:
                start = int(m.group(1))
                if start >= size:
                    self.log_message("%s %s range=%s status=416", self.command, self.path, rng)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            self.log_message("%s %s range=%s status=%d", self.command, self.path, rng, status)
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(size - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            if not body:
                return
            with lock:
                cut = cut_after is not None and path not in cut_done
                if cut:
                    cut_done.add(path)
            with open(path, "rb") as f:
                f.seek(start)
                if cut:
                    # Send part of the body, then drop the connection mid-transfer.
                    self.wfile.write(f.read(max(0, cut_after - start)))
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                while chunk := f.read(1 << 16):
                    self.wfile.write(chunk)

    return Handler


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", help="folder whose files are served at /<file name>")
    p.add_argument("--cut-after", type=int, default=None, metavar="BYTES",
                   help="drop the first GET of each file after this many body bytes")
    args = p.parse_args(argv)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), make_handler(os.path.abspath(args.dir), args.cut_after))
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
