# SPDX-License-Identifier: Apache-2.0
"""The server machinery that fake_aws.py and fake_gcp_azure.py share.

Each fake is a script in this directory, run with Debian's /usr/bin/python3 (stdlib only here);
it puts its own directory on sys.path to import this module (no package). Here is what does not
depend on a provider: the state / fault / call-log store, the HTTP/1.1 keep-alive handler base,
the TLS-or-plain threading server, the /_fake/ control API's common endpoints, the ready file and
main(). Each fake keeps its APIs, error shapes and state format in its own file; README.md
documents both.
"""

import argparse
import copy
import datetime
import fnmatch
import http.server
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time

MAX_BODY = 1 << 20
FAULT_KINDS = ("throttle", "server_error", "unauthorized", "delay", "drop")

PROGRAM = "fake"  # each fake sets its own name: the prefix of every log line


def log(msg):
    sys.stderr.write(f"{PROGRAM}: {msg}\n")
    sys.stderr.flush()


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_millis(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------------------------
# State, faults and the call log.


class FakeBase:
    """One fake's state, its active faults and the log of calls, behind one lock.

    A subclass sets SERVICES (what a fault's "service" may name), implements normalize() (state
    check with defaults filled in; ValueError naming the bad key) and may override fault_extra()
    and patch_state().
    """

    SERVICES = ()

    def __init__(self, state):
        self.lock = threading.RLock()
        self.state = self.normalize(state)
        self.faults = []
        self.calls = []

    def normalize(self, state):
        raise NotImplementedError

    def record_call(self, service, action, status, fault=None, **extra):
        """Logs one request for GET /_fake/calls; extra keys (access_key, code) only when set."""
        entry = {"service": service, "action": action, "status": status, "time": time.time()}
        entry.update((k, v) for k, v in extra.items() if v)
        if fault:
            entry["fault"] = fault
        with self.lock:
            self.calls.append(entry)

    def take_fault(self, service, action):
        """The first active fault that matches, with its count used once; None when none does."""
        with self.lock:
            for f in self.faults:
                if f["service"] != service or f["count"] == 0:
                    continue
                if not fnmatch.fnmatchcase(action, f["action"]):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                return dict(f)
        return None

    def fault_fields(self, spec):
        """One fault of POST /_fake/faults, checked (ValueError names the bad field)."""
        if not isinstance(spec, dict):
            raise ValueError("fault: expected an object")
        service = spec.get("service")
        kind = spec.get("kind")
        if service not in self.SERVICES:
            raise ValueError(f"fault.service: one of {', '.join(self.SERVICES)}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault.kind: one of {', '.join(FAULT_KINDS)}")
        count = spec.get("count", 1)
        delay = spec.get("delay_ms", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < -1 or count == 0:
            raise ValueError("fault.count: a positive integer, or -1 for every matching request")
        if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
            raise ValueError("fault.delay_ms: a non-negative integer")
        extra = self.fault_extra(spec)
        action = spec.get("action", "*")
        if not isinstance(action, str):
            raise ValueError("fault.action: a string (an action name, a glob or *)")
        return {"service": service, "action": action, "kind": kind, "count": count,
                "delay_ms": delay, **extra}

    def fault_extra(self, spec):
        """A fake's own fault fields, checked (ValueError), to follow the common ones."""
        return {}

    def add_faults(self, spec):
        """Adds one fault or a list (all checked before any is added); returns the active ones."""
        specs = spec if isinstance(spec, list) else [spec]
        parsed = [self.fault_fields(s) for s in specs]
        with self.lock:
            self.faults.extend(parsed)
            return self.active_faults()

    def active_faults(self):
        with self.lock:
            return [f for f in self.faults if f["count"] != 0]

    def patch_state(self, new, patch):
        """Lets a fake adjust the patched copy of the state (lock held) before it is normalized."""

    def merge_state(self, patch):
        """POST /_fake/state: replaces the given top-level keys; nothing changes when invalid."""
        if not isinstance(patch, dict):
            raise ValueError("state patch: expected a JSON object")
        with self.lock:
            new = copy.deepcopy(self.state)
            for key, value in patch.items():
                new[key] = copy.deepcopy(value)
            self.patch_state(new, patch)
            self.state = self.normalize(new)
            return self.state


# --------------------------------------------------------------------------------------------
# Metadata servers.


def tree_entries(tree, prefix):
    """A metadata server's directory listing: the direct children of prefix ("" or ending in
    "/") among the keys of a flat path -> value tree, in order, sub-directories with a "/"."""
    entries = []
    for key in tree:
        if key.startswith(prefix):
            head, sep, _ = key[len(prefix):].partition("/")
            entry = head + ("/" if sep else "")
            if entry not in entries:
                entries.append(entry)
    return entries


# --------------------------------------------------------------------------------------------
# HTTP plumbing.


class DropConnection(Exception):
    pass


DROPPED = object()  # BaseHandler.fault_for(): the fault closed the connection, answer nothing


class BaseHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive with Content-Length; a subclass implements serve(path, body).

    GET, POST and PUT reach serve(); a subclass adds the other methods its API has, and the
    stdlib answers 501 to the rest.
    """

    protocol_version = "HTTP/1.1"  # keep-alive: every response with a body has Content-Length
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    # Headers and body leave in one write (handle_one_request flushes after each request) and
    # without Nagle: otherwise every answer waits ~40 ms for the client's delayed ACK.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    fake = None  # set on the subclass

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's name
        pass  # one line per request is written by log_request_line()

    def log_request_line(self, what, status):
        log(f"{self.client_address[0]} {self.command} {what} -> {status}")

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    raise DropConnection()
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise DropConnection()
        return self.rfile.read(length) if length else b""

    def send(self, status, body, content_type, headers=()):
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        self.send_response(status)
        # A 204 has no body by definition and RFC 9110 forbids a Content-Length on it.
        if status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(data)

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def apply_fault(self, fault):
        """Sleeps for delay faults; returns True when the caller must answer nothing."""
        if fault is None:
            return False
        if fault["kind"] == "delay":
            time.sleep(fault["delay_ms"] / 1000.0)
            return False
        if fault["kind"] == "drop":
            self.drop()
            return True
        return False

    def fault_for(self, service, action, **extra):
        """The fault that hits this request (None when none does), its delay already slept;
        DROPPED when it closed the connection, which is then logged and recorded (extra: see
        record_call)."""
        fault = self.fake.take_fault(service, action)
        if self.apply_fault(fault):
            self.fake.record_call(service, action, 0, "drop", **extra)
            self.log_request_line(f"{service}:{action} dropped", 0)
            return DROPPED
        return fault

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def dispatch(self):
        try:
            body = self.read_body()
        except (DropConnection, ValueError):
            self.drop()
            return
        self.serve(self.path.split("?", 1)[0], body)

    def serve(self, path, body):
        raise NotImplementedError

    # ---- control API -----------------------------------------------------------------------

    def control_extra(self, route, payload):
        """A fake's own /_fake/ endpoints: the JSON to answer with 200, or None for 404."""
        return None

    def control(self, path, body):
        def reply(status, obj):
            self.send(status, json.dumps(obj, indent=1) + "\n", "application/json")
            self.log_request_line(f"control {path}", status)

        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError as e:
            reply(400, {"error": f"invalid JSON: {e}"})
            return
        fake = self.fake
        route = (self.command, path.rstrip("/"))
        try:
            if route == ("POST", "/_fake/faults"):
                reply(200, {"faults": fake.add_faults(payload)})
            elif route == ("GET", "/_fake/faults"):
                reply(200, {"faults": fake.active_faults()})
            elif route in (("DELETE", "/_fake/faults"), ("POST", "/_fake/faults/clear")):
                with fake.lock:
                    fake.faults = []
                reply(200, {"faults": []})
            elif route == ("GET", "/_fake/state"):
                with fake.lock:
                    reply(200, fake.state)
            elif route == ("POST", "/_fake/state"):
                reply(200, fake.merge_state(payload))
            elif route == ("GET", "/_fake/calls"):
                with fake.lock:
                    reply(200, list(fake.calls))
            elif route == ("POST", "/_fake/reset_calls"):
                with fake.lock:
                    fake.calls = []
                reply(200, [])
            else:
                answer = self.control_extra(route, payload)
                if answer is None:
                    reply(404, {"error": f"no control endpoint {self.command} {path}"})
                else:
                    reply(200, answer)
        except ValueError as e:
            reply(400, {"error": str(e)})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr, handler, tls_context=None):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.tls_context = tls_context
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a slow or broken
        # client cannot stall accept() for everyone else.
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(30)
        try:
            tls = self.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log(f"{client_address[0]} TLS handshake failed: {e}")
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            try:
                tls.close()
            except OSError:
                pass


def write_ready(path, info):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(info) + "\n")
    os.replace(tmp, path)


def main(doc, *, make_fake, https_handler, https_help, second_flag, second_handler, second_help,
         describe):
    """Parses the common command line, serves the HTTPS port (https_handler) and the plain-HTTP
    port named by second_flag (second_handler) until SIGTERM or SIGINT; returns the exit code.

    make_fake(state) builds the fake (OSError/ValueError for a bad state: exit 2);
    describe(fake) ends the "listening on" log line.
    """
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--state", required=True, help="initial state JSON (README.md)")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help=https_help)
    ap.add_argument(second_flag, type=int, default=0, help=second_help)
    ap.add_argument("--ready-file", help="written atomically once both ports listen")
    args = ap.parse_args()
    second_key = second_flag.lstrip("-").replace("-", "_")  # --imds-port: imds_port

    try:
        with open(args.state, encoding="utf-8") as f:
            state = json.load(f)
        fake = make_fake(state)
    except (OSError, ValueError) as e:
        log(f"{args.state}: {e}")
        return 2

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    def bound(handler):
        return type(f"Bound{handler.__name__}", (handler,), {"fake": fake})

    https = Server((args.listen, args.port), bound(https_handler), ctx)
    second = Server((args.listen, getattr(args, second_key)), bound(second_handler))

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
               for s in (https, second)]
    for t in threads:
        t.start()

    info = {"https_port": https.server_address[1], second_key: second.server_address[1]}
    if args.ready_file:
        write_ready(args.ready_file, info)
    print(json.dumps(info), flush=True)
    log(f"listening on {args.listen}: https {info['https_port']}, "
        f"{second_key.removesuffix('_port')} {info[second_key]}, {describe(fake)}")

    while not stop.wait(1.0):
        pass
    for s in (https, second):
        s.shutdown()
        s.server_close()
    log("stopped")
    return 0
