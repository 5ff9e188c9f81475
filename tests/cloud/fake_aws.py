#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fake EC2, SNS and CloudWatch (Query), Route 53 (REST-XML) and IMDSv2 endpoints for tandem's tests.

The shapes follow shared/cloud/API_SHAPES.md; README.md beside this file documents the state file,
the error table and the /_fake/ control API. Every EC2, SNS, CloudWatch and Route 53 request is
checked with botocore's SigV4 signer (not tandem's), so a client that passes here signs as AWS
expects.
Run with Debian's /usr/bin/python3 (stdlib + python3-botocore only).
"""

import base64
import copy
import datetime
import email.utils
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import string
import sys
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

# fake_common.py, the server machinery both fakes share, sits beside this script (run as a script,
# not from a package); importing it must not leave a __pycache__ in the source tree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import fake_common  # noqa: E402
from fake_common import DROPPED, FakeBase, iso_millis, log, tree_entries, utcnow  # noqa: E402

fake_common.PROGRAM = "fake_aws"

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
R53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"
SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
CW_NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"
SNS_VERSION = "2010-03-31"
CW_VERSION = "2010-08-01"
SNS_MAX_MESSAGE = 262144  # bytes
CW_MAX_DATUMS = 1000
CW_UNITS = (
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None")
SNS_ARN_RE = re.compile(r"^arn:aws(-cn|-us-gov)?:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$")
R53_REGION = "us-east-1"  # Route 53 is global and always signed for us-east-1
MAX_SKEW_S = 300  # AWS refuses requests whose timestamp is more than 5 minutes off
IMDS_MAX_TTL = 21600
DEFAULT_OWNER = "111122223333"

# The Query-protocol services on the HTTPS port, told apart by the signing scope's service (the
# Action when a request is not signed).
QUERY_SERVICES = {"sns": ("Publish",), "monitoring": ("PutMetricData",)}


def iso_seconds(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value, key):
    try:
        dt = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValueError(f"{key}: not an ISO 8601 time: {value!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt


# --------------------------------------------------------------------------------------------
# XML building: tiny helpers so every response reads like the documented shape.


def txt(tag, value):
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{tag}>{escape(str(value))}</{tag}>"


def node(tag, *parts):
    inner = "".join(p for p in parts if p)
    return f"<{tag}>{inner}</{tag}>" if inner else f"<{tag}/>"


def item_set(tag, parts):
    return node(tag, *(node("item", p) for p in parts))


def local_name(tag):
    return tag.rsplit("}", 1)[-1]


# --------------------------------------------------------------------------------------------
# Errors. Each service has its own error shape; the handlers raise and the dispatcher renders.


class ApiError(Exception):
    def __init__(self, status, code, message, sender=True):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.sender = sender  # Route 53 <Type>: Sender for 4xx, Receiver for 5xx


class AuthError(Exception):
    """A signature-check failure, mapped to each service's code by AUTH_ERRORS."""

    def __init__(self, kind, message=None):
        super().__init__(kind)
        self.kind = kind
        self.message = message


SIG_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)

# kind -> service -> (status, code, default message)
AUTH_ERRORS = {
    "missing": {
        "ec2": (400, "MissingAuthenticationToken", "Request is missing Authentication Token"),
        "route53": (403, "MissingAuthenticationToken", "Missing Authentication Token"),
    },
    "incomplete": {
        "ec2": (400, "IncompleteSignature", "The request signature does not conform to AWS standards."),
        "route53": (400, "IncompleteSignature", "The request signature does not conform to AWS standards."),
    },
    "unknown_key": {
        "ec2": (403, "AuthFailure", "AWS was not able to validate the provided access credentials"),
        "route53": (403, "InvalidClientTokenId", "The security token included in the request is invalid."),
    },
    "bad_token": {
        "ec2": (403, "AuthFailure", "AWS was not able to validate the provided access credentials"),
        "route53": (403, "InvalidClientTokenId", "The security token included in the request is invalid."),
    },
    "expired_token": {
        "ec2": (400, "RequestExpired", "Request has expired."),
        "route53": (403, "ExpiredToken", "The security token included in the request is expired"),
    },
    "mismatch": {
        "ec2": (403, "SignatureDoesNotMatch", SIG_MISMATCH),
        "route53": (403, "SignatureDoesNotMatch", SIG_MISMATCH),
    },
    "expired_request": {
        "ec2": (400, "RequestExpired", "Request has expired."),
        "route53": (403, "SignatureDoesNotMatch", "Signature expired"),
    },
}


for _kind, _by_service in AUTH_ERRORS.items():
    for _svc in ("sns", "monitoring"):
        _by_service[_svc] = _by_service["route53"]


def auth_api_error(err, service):
    status, code, message = AUTH_ERRORS[err.kind][service]
    if err.message and not (err.kind == "expired_request" and service == "ec2"):
        message = err.message
    return ApiError(status, code, message)


# --------------------------------------------------------------------------------------------
# SigV4 verification with botocore's own canonicalisation.


class PinnedSigV4(SigV4Auth):
    """botocore's SigV4Auth at the request's own timestamp, over exactly the headers it signed.

    add_auth() would stamp the current time and rewrite the date and token headers, so the
    verifier calls the canonicalisation steps itself with context['timestamp'] pinned.
    headers_to_sign() is narrowed to the client's SignedHeaders: botocore would otherwise add
    every header present and drop user-agent/expect, which the client may have signed.
    """

    def __init__(self, credentials, service, region, timestamp, signed_names):
        super().__init__(credentials, service, region)
        self._timestamp = timestamp
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        selected = HTTPHeaders()
        for name in self._signed_names:
            for value in request.headers.get_all(name) or []:
                selected[name] = value
        return selected

    def compute(self, request):
        request.context["timestamp"] = self._timestamp
        canonical = self.canonical_request(request)
        to_sign = self.string_to_sign(request, canonical)
        return self.signature(to_sign, request), canonical, to_sign


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$", re.S)


def parse_authorization(value):
    m = AUTH_RE.match(value.strip())
    if not m:
        algo = value.split(" ", 1)[0]
        raise AuthError("incomplete", f"Unsupported authorization type: {algo}")
    fields = {}
    for part in re.split(r"\s*,\s*", m.group(1).strip()):
        key, sep, val = part.partition("=")
        if sep:
            fields[key.strip()] = val.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise AuthError(
            "incomplete",
            f"Authorization header requires '{missing[0]}' parameter. Authorization={value}",
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthError("incomplete", f"Credential must have exactly 5 slash-delimited elements, e.g. "
                        f"keyid/date/region/service/term, got '{fields['Credential']}'")
    signed = fields["SignedHeaders"].split(";")
    return scope, signed, fields["Signature"]


def request_timestamp(headers):
    amz = headers.get("X-Amz-Date")
    if amz:
        try:
            dt = datetime.datetime.strptime(amz.strip(), SIGV4_TIMESTAMP)
        except ValueError:
            raise AuthError("incomplete", f"Invalid X-Amz-Date: {amz}") from None
        return dt.replace(tzinfo=datetime.timezone.utc)
    date = headers.get("Date")
    if date:
        try:
            dt = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            dt = None
        if dt is not None:
            return dt.astimezone(datetime.timezone.utc) if dt.tzinfo else dt.replace(
                tzinfo=datetime.timezone.utc)
    raise AuthError("incomplete", "AWS authentication requires a valid Date or x-amz-date header")


def canonical_params(query):
    """Decoded query pairs: AWS re-encodes them itself when it builds the canonical query."""
    pairs = []
    if query:
        for part in query.split("&"):
            key, _, value = part.partition("=")
            pairs.append((urllib.parse.unquote(key), urllib.parse.unquote(value)))
    return pairs


# --------------------------------------------------------------------------------------------
# State: loading, validation and defaults.


def _need(obj, key, where, kind=str):
    if key not in obj:
        raise ValueError(f"{where}: missing '{key}'")
    if not isinstance(obj[key], kind):
        raise ValueError(f"{where}.{key}: expected {kind.__name__}")
    return obj[key]


def _list_of_dicts(state, key):
    value = state.setdefault(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(f"{key}: expected a list of objects")
    return value


def fqdn(name):
    # Route 53 writes '*' and other specials as \ddd octal escapes; either form is accepted.
    name = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), name.strip().lower())
    return name if name.endswith(".") else name + "."


def r53_name(name):
    """A name as Route 53 returns it: a wildcard label comes back as \\052."""
    return name.replace("*", "\\052")


def random_id(prefix, n=17):
    return prefix + secrets.token_hex((n + 1) // 2)[:n]


def random_upper(n):
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


def normalize_state(state):
    """Validates the state in place and fills in defaults; ValueError names the bad key."""
    if not isinstance(state, dict):
        raise ValueError("state: expected a JSON object")
    state.setdefault("region", "us-east-1")
    _need(state, "region", "state")
    state.setdefault("owner_id", DEFAULT_OWNER)
    accounts = state.setdefault("accounts", {})
    if not isinstance(accounts, dict):
        raise ValueError("accounts: expected an object {access_key: {secret, session_token?}}")
    for akid, acct in accounts.items():
        if not isinstance(acct, dict):
            raise ValueError(f"accounts.{akid}: expected an object")
        _need(acct, "secret", f"accounts.{akid}")
        if "session_token" in acct and not isinstance(acct["session_token"], str):
            raise ValueError(f"accounts.{akid}.session_token: expected a string")

    imds = state.setdefault("imds", {})
    if not isinstance(imds, dict):
        raise ValueError("imds: expected an object")
    imds.setdefault("instance_id", "i-0123456789abcdef0")
    imds.setdefault("region", state["region"])
    imds.setdefault("az", imds["region"] + "a")
    imds.setdefault("role", "tandem-test-role")
    macs = imds.setdefault("macs", {})
    if not isinstance(macs, dict):
        raise ValueError("imds.macs: expected an object {mac: eni_id}")
    creds = imds.setdefault("credentials", {})
    if not isinstance(creds, dict):
        raise ValueError("imds.credentials: expected an object {access_key, secret, token}")
    creds.setdefault("access_key", "ASIA" + random_upper(16))
    creds.setdefault("secret", base64.b64encode(secrets.token_bytes(30)).decode())
    creds.setdefault("token", base64.b64encode(secrets.token_bytes(96)).decode())
    imds.setdefault("expiration", iso_seconds(utcnow() + datetime.timedelta(hours=6)))
    parse_iso(imds["expiration"], "imds.expiration")
    imds.setdefault("last_updated", iso_seconds(utcnow()))

    for i, vpc in enumerate(_list_of_dicts(state, "vpcs")):
        _need(vpc, "vpc_id", f"vpcs[{i}]")
        vpc.setdefault("cidr_blocks", [])
    for i, rtb in enumerate(_list_of_dicts(state, "route_tables")):
        where = f"route_tables[{i}]"
        _need(rtb, "route_table_id", where)
        rtb.setdefault("vpc_id", "")
        rtb.setdefault("main", False)
        for j, route in enumerate(_need(rtb, "routes", where, list) if "routes" in rtb else
                                  rtb.setdefault("routes", [])):
            rwhere = f"{where}.routes[{j}]"
            if not isinstance(route, dict):
                raise ValueError(f"{rwhere}: expected an object")
            cidr = _need(route, "destination_cidr", rwhere)
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{rwhere}.destination_cidr: not a CIDR: {cidr!r}") from None
            if "network_interface_id" not in route and "gateway_id" not in route:
                raise ValueError(f"{rwhere}: needs network_interface_id or gateway_id")
    for i, eni in enumerate(_list_of_dicts(state, "enis")):
        _need(eni, "eni_id", f"enis[{i}]")
        eni.setdefault("instance_id", "")
        eni.setdefault("private_ip", "")
    for i, addr in enumerate(_list_of_dicts(state, "addresses")):
        _need(addr, "allocation_id", f"addresses[{i}]")
        _need(addr, "public_ip", f"addresses[{i}]")
    for i, zone in enumerate(_list_of_dicts(state, "zones")):
        _need(zone, "zone_name", f"zones[{i}]")
        zone.setdefault("zone_id", zone["zone_name"])
        zone.setdefault("state", "available")
        zone.setdefault("messages", [])

    hosted = state.setdefault("hosted_zones", {})
    if not isinstance(hosted, dict):
        raise ValueError("hosted_zones: expected an object {zone_id: {name, records}}")
    for zid, zone in hosted.items():
        where = f"hosted_zones.{zid}"
        if not isinstance(zone, dict):
            raise ValueError(f"{where}: expected an object")
        zone["name"] = fqdn(_need(zone, "name", where))
        records = zone.setdefault("records", [])
        for j, rec in enumerate(records):
            rwhere = f"{where}.records[{j}]"
            rec["name"] = fqdn(_need(rec, "name", rwhere))
            rec["type"] = _need(rec, "type", rwhere).upper()
            _need(rec, "ttl", rwhere, int)
            _need(rec, "values", rwhere, list)

    state.setdefault("insync_after_polls", 1)
    if not isinstance(state["insync_after_polls"], int) or state["insync_after_polls"] < 0:
        raise ValueError("insync_after_polls: expected an integer >= 0")

    topics = state.setdefault("sns_topics", [])
    if not isinstance(topics, list):
        raise ValueError("sns_topics: expected a list of topic ARNs")
    for i, arn in enumerate(topics):
        if not isinstance(arn, str) or not SNS_ARN_RE.match(arn):
            raise ValueError(f"sns_topics[{i}]: not an SNS topic ARN: {arn!r}")
    _list_of_dicts(state, "sns_messages")
    _list_of_dicts(state, "metrics")
    return state


# --------------------------------------------------------------------------------------------
# The fake: state, faults, call log and the three APIs.


def ec2_list(params, name):
    """Name.1, Name.2, ... in index order."""
    found = []
    prefix = name + "."
    for key, value in params.items():
        if key.startswith(prefix) and key[len(prefix):].isdigit():
            found.append((int(key[len(prefix):]), value))
    return [v for _, v in sorted(found)]


def ec2_filters(params):
    filters = {}
    for key, value in params.items():
        m = re.fullmatch(r"Filter\.(\d+)\.Name", key)
        if m:
            filters[int(m.group(1))] = (value, ec2_list(params, f"Filter.{m.group(1)}.Value"))
    return [filters[k] for k in sorted(filters)]


def apply_filters(items, filters, fields):
    """EC2 filters: AND across filters, OR across values, '*' and '?' wildcards."""
    for name, _ in filters:
        if name not in fields:
            raise ApiError(400, "InvalidParameterValue", f"The filter '{name}' is invalid")
    out = []
    for it in items:
        ok = True
        for name, values in filters:
            have = [str(v) for v in fields[name](it) if v not in (None, "")]
            if not any(fnmatch.fnmatchcase(h, pat) for h in have for pat in values):
                ok = False
                break
        if ok:
            out.append(it)
    return out


def not_found(code, kind, ids):
    if len(ids) == 1:
        return ApiError(400, code, f"The {kind} ID '{ids[0]}' does not exist")
    return ApiError(400, code, f"The {kind} IDs '{', '.join(ids)}' do not exist")


def check_prefix(value, prefix, code):
    if not value.startswith(prefix):
        raise ApiError(400, code, f'Invalid id: "{value}" (expecting "{prefix}...")')


def is_true(value):
    return str(value).lower() == "true"


class Fake(FakeBase):
    SERVICES = ("ec2", "route53", "sns", "monitoring", "imds")  # what a fault may name

    def __init__(self, state):
        super().__init__(state)
        self.imds_tokens = {}  # token -> monotonic expiry
        self.changes = {}  # change id -> {submitted_at, comment, polls}

    def normalize(self, state):
        return normalize_state(state)

    def patch_state(self, new, patch):
        # A new imds object without credentials keeps the role's current ones: a test that
        # moves the instance or changes the expiry should not silently rotate the keys a
        # client has cached. Rotation is explicit: give imds.credentials.
        if isinstance(patch.get("imds"), dict):
            for keep in ("credentials", "expiration", "last_updated"):
                if keep not in patch["imds"]:
                    new["imds"][keep] = copy.deepcopy(self.state["imds"][keep])

    # ---- credentials -----------------------------------------------------------------------

    def lookup_credentials(self, akid):
        """(secret, session token or None, expiry or None) for a known access key."""
        with self.lock:
            acct = self.state["accounts"].get(akid)
            if acct is not None:
                return acct["secret"], acct.get("session_token"), None
            imds = self.state["imds"]
            if imds["credentials"]["access_key"] == akid:
                creds = imds["credentials"]
                return creds["secret"], creds["token"], parse_iso(imds["expiration"], "expiration")
        return None

    def verify(self, method, raw_path, headers, body, service, region):
        """Checks a SigV4 Authorization header; returns the access key or raises AuthError."""
        auth = headers.get("Authorization")
        if not auth:
            raise AuthError("missing")
        scope, signed_names, signature = parse_authorization(auth)
        akid, scope_date, scope_region, scope_service, _ = scope
        found = self.lookup_credentials(akid)
        if found is None:
            raise AuthError("unknown_key")
        secret, token, expiry = found
        if scope_region != region:
            raise AuthError("mismatch", f"Credential should be scoped to a valid region, not "
                                        f"'{scope_region}'. ")
        if scope_service != service:
            raise AuthError("mismatch", f"Credential should be scoped to correct service: "
                                        f"'{service}'. ")
        if "host" not in signed_names:
            raise AuthError("incomplete", "'Host' or ':authority' must be a 'SignedHeader' in the "
                                          "AWS Authorization.")
        ts = request_timestamp(headers)
        ts_text = ts.strftime(SIGV4_TIMESTAMP)
        if scope_date != ts_text[:8]:
            raise AuthError("mismatch", f"Date in Credential scope does not match YYYYMMDD from "
                                        f"ISO-8601 version of date from HTTP: '{scope_date}' != "
                                        f"'{ts_text[:8]}', from '{ts_text}'.")
        now = utcnow()
        skew = (ts - now).total_seconds()
        if abs(skew) > MAX_SKEW_S:
            fmt = SIGV4_TIMESTAMP
            if skew < 0:
                msg = (f"Signature expired: {ts_text} is now earlier than "
                       f"{(now - datetime.timedelta(seconds=MAX_SKEW_S)).strftime(fmt)} "
                       f"({now.strftime(fmt)} - 5 min.)")
            else:
                msg = (f"Signature not yet current: {ts_text} is still later than "
                       f"{(now + datetime.timedelta(seconds=MAX_SKEW_S)).strftime(fmt)} "
                       f"({now.strftime(fmt)} + 5 min.)")
            raise AuthError("expired_request", msg)
        sent_token = headers.get("X-Amz-Security-Token")
        if token is not None:
            if not sent_token or not hmac.compare_digest(sent_token, token):
                raise AuthError("bad_token")
            if "x-amz-security-token" not in signed_names:
                raise AuthError("bad_token", "The security token included in the request is not "
                                             "signed (X-Amz-Security-Token must be a SignedHeader).")
            if expiry is not None and now >= expiry:
                raise AuthError("expired_token")
        elif sent_token:
            raise AuthError("bad_token")
        for name in signed_names:
            if headers.get(name) is None:
                raise AuthError("mismatch", f"Signed header '{name}' is missing from the request.")
        content_sha = headers.get("X-Amz-Content-SHA256")
        if content_sha is not None and "x-amz-content-sha256" in signed_names:
            if content_sha != hashlib.sha256(body).hexdigest():
                raise AuthError("mismatch", "The provided 'x-amz-content-sha256' header does not "
                                            "match what was computed.")

        path, _, query = raw_path.partition("?")
        req = AWSRequest(method=method, url="https://" + (headers.get("Host") or "localhost") + path,
                         data=body, params=canonical_params(query))
        for name in signed_names:
            for value in headers.get_all(name) or []:
                req.headers[name] = value
        signer = PinnedSigV4(Credentials(akid, secret, token), service, region, ts_text,
                             signed_names)
        expected, canonical, to_sign = signer.compute(req)
        if not hmac.compare_digest(expected, signature):
            log(f"signature mismatch for {akid}: canonical request {canonical!r}; "
                f"string to sign {to_sign!r}")
            raise AuthError("mismatch")
        return akid

    # ---- EC2 -------------------------------------------------------------------------------

    def eni(self, eni_id):
        for e in self.state["enis"]:
            if e["eni_id"] == eni_id:
                return e
        return None

    def eni_of_instance(self, instance_id):
        enis = [e for e in self.state["enis"] if e["instance_id"] == instance_id]
        if not enis:
            raise ApiError(400, "InvalidInstanceID.NotFound",
                           f"The instance ID '{instance_id}' does not exist")
        if len(enis) > 1:
            raise ApiError(400, "InvalidInstanceID",
                           f"There are multiple interfaces attached to instance '{instance_id}'. "
                           f"Please specify an interface ID for the operation instead.")
        return enis[0]

    def route_xml(self, route):
        parts = [txt("destinationCidrBlock", route["destination_cidr"])]
        eni_id = route.get("network_interface_id")
        state = route.get("state")
        if eni_id:
            eni = self.eni(eni_id)
            if eni and eni["instance_id"]:
                parts.append(txt("instanceId", eni["instance_id"]))
                parts.append(txt("instanceOwnerId", self.state["owner_id"]))
            parts.append(txt("networkInterfaceId", eni_id))
            if state is None:
                state = "active" if eni else "blackhole"
        else:
            parts.append(txt("gatewayId", route["gateway_id"]))
        parts.append(txt("state", state or "active"))
        origin = route.get("origin") or (
            "CreateRouteTable" if route.get("gateway_id") == "local" else "CreateRoute")
        parts.append(txt("origin", origin))
        return "".join(parts)

    def route_table_xml(self, rtb):
        assoc = []
        if rtb.get("main"):
            assoc.append(txt("routeTableAssociationId",
                             "rtbassoc-" + hashlib.sha256(rtb["route_table_id"].encode())
                             .hexdigest()[:17]) + txt("routeTableId", rtb["route_table_id"]) +
                         txt("main", True) + node("associationState", txt("state", "associated")))
        return "".join([
            txt("routeTableId", rtb["route_table_id"]),
            txt("vpcId", rtb["vpc_id"]),
            txt("ownerId", self.state["owner_id"]),
            item_set("routeSet", [self.route_xml(r) for r in rtb["routes"]]),
            item_set("associationSet", assoc),
            node("propagatingVgwSet"),
            node("tagSet"),
        ])

    def ec2_describe_route_tables(self, p):
        tables = self.state["route_tables"]
        ids = ec2_list(p, "RouteTableId")
        if ids:
            known = {t["route_table_id"] for t in tables}
            missing = [i for i in ids if i not in known]
            if missing:
                raise not_found("InvalidRouteTableID.NotFound", "routeTable", missing)
            tables = [t for t in tables if t["route_table_id"] in ids]

        def route_field(key):
            return lambda t: [r.get(key) for r in t["routes"]]

        def route_instance(t):
            return [(self.eni(r.get("network_interface_id") or "") or {}).get("instance_id")
                    for r in t["routes"]]

        tables = apply_filters(tables, ec2_filters(p), {
            "vpc-id": lambda t: [t["vpc_id"]],
            "route-table-id": lambda t: [t["route_table_id"]],
            "route.destination-cidr-block": route_field("destination_cidr"),
            "route.network-interface-id": route_field("network_interface_id"),
            "route.gateway-id": route_field("gateway_id"),
            "route.instance-id": route_instance,
            "association.main": lambda t: ["true" if t.get("main") else "false"],
            "owner-id": lambda t: [self.state["owner_id"]],
        })
        start = 0
        token = p.get("NextToken")
        if token:
            try:
                start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])
                if start < 0 or start > len(tables):
                    raise ValueError
            except (ValueError, IndexError, UnicodeDecodeError):
                raise ApiError(400, "InvalidPaginationToken",
                               f"Invalid pagination token: {token}") from None
        end = len(tables)
        if "MaxResults" in p:
            try:
                limit = int(p["MaxResults"])
            except ValueError:
                limit = -1
            if not 5 <= limit <= 100:
                raise ApiError(400, "InvalidParameterValue",
                               f"Value ( {p['MaxResults']} ) for parameter maxResults is invalid. "
                               f"Expecting a value between 5 and 100.")
            end = min(end, start + limit)
        body = item_set("routeTableSet", [self.route_table_xml(t) for t in tables[start:end]])
        if end < len(tables):
            body += txt("nextToken", base64.urlsafe_b64encode(f"rtb:{end}".encode()).decode())
        return body

    def ec2_replace_route(self, p):
        rtb_id = p.get("RouteTableId")
        cidr = p.get("DestinationCidrBlock")
        if not rtb_id:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter routeTableId")
        if not cidr:
            raise ApiError(400, "MissingParameter",
                           "The request must contain the parameter destinationCidrBlock")
        check_prefix(rtb_id, "rtb-", "InvalidRouteTableID.Malformed")
        try:
            dest = ipaddress.ip_network(cidr, strict=False)
            if "/" not in cidr:
                raise ValueError
        except ValueError:
            raise ApiError(400, "InvalidParameterValue",
                           f"Value ({cidr}) for parameter destinationCidrBlock is invalid. "
                           f"This is not a valid CIDR block.") from None
        targets = [k for k in ("NetworkInterfaceId", "GatewayId", "InstanceId") if p.get(k)]
        if not targets:
            raise ApiError(400, "MissingParameter", "The request must contain exactly one of "
                           "gatewayId, natGatewayId, networkInterfaceId, vpcPeeringConnectionId, "
                           "instanceId, transitGatewayId, localGatewayId, carrierGatewayId or "
                           "coreNetworkArn")
        if len(targets) > 1:
            raise ApiError(400, "InvalidParameterCombination",
                           "The parameter " + " and ".join(targets) + " cannot be used together")
        rtb = next((t for t in self.state["route_tables"] if t["route_table_id"] == rtb_id), None)
        if rtb is None:
            raise not_found("InvalidRouteTableID.NotFound", "routeTable", [rtb_id])
        new = {}
        if "NetworkInterfaceId" in targets:
            eni_id = p["NetworkInterfaceId"]
            check_prefix(eni_id, "eni-", "InvalidNetworkInterfaceID.Malformed")
            if self.eni(eni_id) is None:
                raise not_found("InvalidNetworkInterfaceID.NotFound", "networkInterface", [eni_id])
            new["network_interface_id"] = eni_id
        elif "InstanceId" in targets:
            new["network_interface_id"] = self.eni_of_instance(p["InstanceId"])["eni_id"]
        else:
            new["gateway_id"] = p["GatewayId"]
        route = next((r for r in rtb["routes"]
                      if ipaddress.ip_network(r["destination_cidr"], strict=False) == dest), None)
        if route is None:
            raise ApiError(400, "InvalidRoute.NotFound",
                           f"There is no route defined for '{cidr}' in the route table. "
                           f"Use CreateRoute instead.")
        self.check_dry_run(p)
        for key in ("network_interface_id", "gateway_id", "state", "origin"):
            route.pop(key, None)
        route.update(new)
        route["origin"] = "ReplaceRoute"
        return txt("return", True)

    def ec2_describe_vpcs(self, p):
        vpcs = self.state["vpcs"]
        ids = ec2_list(p, "VpcId")
        if ids:
            known = {v["vpc_id"] for v in vpcs}
            missing = [i for i in ids if i not in known]
            if missing:
                raise not_found("InvalidVpcID.NotFound", "vpc", missing)
            vpcs = [v for v in vpcs if v["vpc_id"] in ids]
        vpcs = apply_filters(vpcs, ec2_filters(p), {
            "vpc-id": lambda v: [v["vpc_id"]],
            "cidr": lambda v: v["cidr_blocks"][:1],
            "cidr-block-association.cidr-block": lambda v: v["cidr_blocks"],
            "state": lambda v: ["available"],
            "owner-id": lambda v: [self.state["owner_id"]],
        })
        out = []
        for v in vpcs:
            assoc = [txt("cidrBlock", c) + txt("associationId", "vpc-cidr-assoc-" +
                     hashlib.sha256((v["vpc_id"] + c).encode()).hexdigest()[:17]) +
                     node("cidrBlockState", txt("state", "associated")) for c in v["cidr_blocks"]]
            out.append("".join([
                txt("vpcId", v["vpc_id"]),
                txt("ownerId", self.state["owner_id"]),
                txt("state", "available"),
                txt("cidrBlock", v["cidr_blocks"][0]) if v["cidr_blocks"] else "",
                item_set("cidrBlockAssociationSet", assoc),
                txt("dhcpOptionsId", "default"),
                node("tagSet"),
                txt("instanceTenancy", "default"),
                txt("isDefault", bool(v.get("is_default", False))),
            ]))
        return item_set("vpcSet", out)

    def address(self, allocation_id):
        for a in self.state["addresses"]:
            if a["allocation_id"] == allocation_id:
                return a
        return None

    def ec2_associate_address(self, p):
        alloc_id = p.get("AllocationId")
        if not alloc_id:
            raise ApiError(400, "MissingParameter",
                           "The request must contain the parameter AllocationId")
        check_prefix(alloc_id, "eipalloc-", "InvalidAllocationID.Malformed")
        addr = self.address(alloc_id)
        if addr is None:
            raise ApiError(400, "InvalidAllocationID.NotFound",
                           f"The allocation ID '{alloc_id}' does not exist")
        if p.get("NetworkInterfaceId"):
            eni_id = p["NetworkInterfaceId"]
            check_prefix(eni_id, "eni-", "InvalidNetworkInterfaceID.Malformed")
            eni = self.eni(eni_id)
            if eni is None:
                raise not_found("InvalidNetworkInterfaceID.NotFound", "networkInterface", [eni_id])
        elif p.get("InstanceId"):
            eni = self.eni_of_instance(p["InstanceId"])
        else:
            raise ApiError(400, "MissingParameter", "Either an instance ID or a network interface "
                                                    "ID must be specified")
        private_ip = p.get("PrivateIpAddress") or eni["private_ip"]
        if private_ip not in [eni["private_ip"]] + list(eni.get("private_ips", [])):
            raise ApiError(400, "InvalidParameterValue",
                           f"The specified private IP address {private_ip} is not assigned to the "
                           f"network interface {eni['eni_id']}")
        current = addr.get("association_id")
        same = (addr.get("network_interface_id") == eni["eni_id"]
                and addr.get("private_ip") == private_ip)
        if current and not same and not is_true(p.get("AllowReassociation", "false")):
            raise ApiError(400, "Resource.AlreadyAssociated",
                           f"resource {alloc_id} is already associated with associate-id {current}")
        self.check_dry_run(p)
        if not (current and same):
            addr["association_id"] = random_id("eipassoc-")
        addr["network_interface_id"] = eni["eni_id"]
        addr["private_ip"] = private_ip
        return txt("return", True) + txt("associationId", addr["association_id"])

    def ec2_disassociate_address(self, p):
        assoc_id = p.get("AssociationId")
        public_ip = p.get("PublicIp")
        if not assoc_id and not public_ip:
            raise ApiError(400, "MissingParameter",
                           "The request must contain the parameter AssociationId")
        if assoc_id:
            check_prefix(assoc_id, "eipassoc-", "InvalidAssociationID.Malformed")
            addr = next((a for a in self.state["addresses"]
                         if a.get("association_id") == assoc_id), None)
            if addr is None:
                raise ApiError(400, "InvalidAssociationID.NotFound",
                               f"The association ID '{assoc_id}' does not exist")
        else:
            addr = next((a for a in self.state["addresses"] if a["public_ip"] == public_ip), None)
            if addr is None:
                raise ApiError(400, "InvalidAddress.NotFound", f"Address '{public_ip}' not found.")
        self.check_dry_run(p)
        for key in ("association_id", "network_interface_id", "private_ip"):
            addr.pop(key, None)
        return txt("return", True)

    def ec2_describe_addresses(self, p):
        addrs = self.state["addresses"]
        alloc_ids = ec2_list(p, "AllocationId")
        public_ips = ec2_list(p, "PublicIp")
        for aid in alloc_ids:
            if self.address(aid) is None:
                raise ApiError(400, "InvalidAllocationID.NotFound",
                               f"The allocation ID '{aid}' does not exist")
        for ip in public_ips:
            if not any(a["public_ip"] == ip for a in addrs):
                raise ApiError(400, "InvalidAddress.NotFound", f"Address '{ip}' not found.")
        if alloc_ids or public_ips:
            addrs = [a for a in addrs
                     if a["allocation_id"] in alloc_ids or a["public_ip"] in public_ips]

        def instance_of(a):
            eni = self.eni(a.get("network_interface_id") or "")
            return eni["instance_id"] if eni else None

        addrs = apply_filters(addrs, ec2_filters(p), {
            "allocation-id": lambda a: [a["allocation_id"]],
            "public-ip": lambda a: [a["public_ip"]],
            "association-id": lambda a: [a.get("association_id")],
            "network-interface-id": lambda a: [a.get("network_interface_id")],
            "private-ip-address": lambda a: [a.get("private_ip")],
            "instance-id": lambda a: [instance_of(a)],
            "domain": lambda a: ["vpc"],
        })
        out = []
        for a in addrs:
            parts = [txt("publicIp", a["public_ip"]), txt("allocationId", a["allocation_id"]),
                     txt("domain", "vpc")]
            if a.get("association_id"):
                inst = instance_of(a)
                if inst:
                    parts.append(txt("instanceId", inst))
                parts += [txt("associationId", a["association_id"]),
                          txt("networkInterfaceId", a["network_interface_id"]),
                          txt("networkInterfaceOwnerId", self.state["owner_id"]),
                          txt("privateIpAddress", a["private_ip"])]
            parts += [node("tagSet"), txt("publicIpv4Pool", "amazon"),
                      txt("networkBorderGroup", self.state["region"])]
            out.append("".join(parts))
        return item_set("addressesSet", out)

    def ec2_describe_availability_zones(self, p):
        zones = self.state["zones"]
        names = ec2_list(p, "ZoneName")
        zone_ids = ec2_list(p, "ZoneId")
        for n in names:
            if not any(z["zone_name"] == n for z in zones):
                raise ApiError(400, "InvalidParameterValue", f"Invalid availability zone: [{n}]")
        for n in zone_ids:
            if not any(z["zone_id"] == n for z in zones):
                raise ApiError(400, "InvalidParameterValue", f"Invalid availability zone: [{n}]")
        if names or zone_ids:
            zones = [z for z in zones if z["zone_name"] in names or z["zone_id"] in zone_ids]
        zones = apply_filters(zones, ec2_filters(p), {
            "zone-name": lambda z: [z["zone_name"]],
            "zone-id": lambda z: [z["zone_id"]],
            "state": lambda z: [z["state"]],
            "region-name": lambda z: [self.state["region"]],
            "zone-type": lambda z: ["availability-zone"],
            "group-name": lambda z: [self.state["region"]],
            "opt-in-status": lambda z: ["opt-in-not-required"],
        })
        region = self.state["region"]
        out = []
        for z in zones:
            out.append("".join([
                txt("groupName", region),
                txt("optInStatus", "opt-in-not-required"),
                txt("zoneName", z["zone_name"]),
                txt("zoneId", z["zone_id"]),
                txt("zoneState", z["state"]),
                txt("zoneType", "availability-zone"),
                txt("regionName", region),
                item_set("messageSet", [txt("message", m) for m in z["messages"]]),
                txt("networkBorderGroup", region),
            ]))
        return item_set("availabilityZoneInfo", out)

    def check_dry_run(self, p):
        if is_true(p.get("DryRun", "false")):
            raise ApiError(412, "DryRunOperation",
                           "Request would have succeeded, but DryRun flag is set.")

    EC2_ACTIONS = {
        "DescribeRouteTables": "ec2_describe_route_tables",
        "ReplaceRoute": "ec2_replace_route",
        "DescribeVpcs": "ec2_describe_vpcs",
        "AssociateAddress": "ec2_associate_address",
        "DisassociateAddress": "ec2_disassociate_address",
        "DescribeAddresses": "ec2_describe_addresses",
        "DescribeAvailabilityZones": "ec2_describe_availability_zones",
    }

    def ec2_call(self, action, params):
        """Returns the response XML for a known action; raises ApiError otherwise."""
        if not params.get("Version"):
            raise ApiError(400, "MissingParameter", "The request must contain the parameter Version")
        method = self.EC2_ACTIONS.get(action)
        if method is None:
            raise ApiError(400, "InvalidAction", f"The action {action} is not valid for this web "
                                                 f"service.")
        with self.lock:
            if action.startswith("Describe"):
                self.check_dry_run(params)
            body = getattr(self, method)(params)
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{EC2_NS}">'
                f"{txt('requestId', uuid.uuid4())}{body}</{action}Response>")

    # ---- Route 53 --------------------------------------------------------------------------

    def hosted_zone(self, zone_id):
        zone = self.state["hosted_zones"].get(zone_id)
        if zone is None:
            raise ApiError(404, "NoSuchHostedZone", f"No hosted zone found with ID: {zone_id}")
        return zone

    @staticmethod
    def rrset_key(rec):
        return (tuple(reversed(rec["name"].rstrip(".").split("."))), rec["type"])

    @staticmethod
    def rrset_xml(rec):
        return node("ResourceRecordSet", txt("Name", r53_name(rec["name"])), txt("Type", rec["type"]),
                    txt("TTL", rec["ttl"]),
                    node("ResourceRecords", *(node("ResourceRecord", txt("Value", v))
                                              for v in rec["values"])))

    def change_info_xml(self, change_id, change):
        status = "PENDING" if change["polls"] < change["insync_after"] else "INSYNC"
        return node("ChangeInfo", txt("Id", "/change/" + change_id), txt("Status", status),
                    txt("SubmittedAt", change["submitted_at"]),
                    txt("Comment", change["comment"]) if change["comment"] else "")

    @staticmethod
    def parse_change_batch(body):
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise ApiError(400, "InvalidInput", f"Invalid XML ; {e}") from None
        if local_name(root.tag) != "ChangeResourceRecordSetsRequest":
            raise ApiError(400, "InvalidInput", "Invalid XML ; expected "
                                                "ChangeResourceRecordSetsRequest")

        def child(el, name):
            for c in el:
                if local_name(c.tag) == name:
                    return c
            return None

        def children(el, name):
            return [c for c in el if local_name(c.tag) == name] if el is not None else []

        batch = child(root, "ChangeBatch")
        if batch is None:
            raise ApiError(400, "InvalidInput", "Invalid request: Missing field 'ChangeBatch'")
        comment_el = child(batch, "Comment")
        changes = []
        for ch in children(child(batch, "Changes"), "Change"):
            action_el = child(ch, "Action")
            rrs = child(ch, "ResourceRecordSet")
            action = (action_el.text or "").strip() if action_el is not None else ""
            if action not in ("CREATE", "UPSERT", "DELETE"):
                raise ApiError(400, "InvalidInput",
                               f"1 validation error detected: Value '{action}' at "
                               f"'changeBatch.changes.1.member.action' failed to satisfy "
                               f"constraint: Member must satisfy enum value set: "
                               f"[CREATE, UPSERT, DELETE]")
            if rrs is None:
                raise ApiError(400, "InvalidInput", "Invalid request: Missing field "
                                                    "'ResourceRecordSet'")
            name_el, type_el, ttl_el = child(rrs, "Name"), child(rrs, "Type"), child(rrs, "TTL")
            if name_el is None or type_el is None:
                raise ApiError(400, "InvalidInput", "Invalid request: Missing field 'Name' or "
                                                    "'Type'")
            name, rtype = fqdn(name_el.text or ""), (type_el.text or "").strip().upper()
            values = [(v.text or "").strip()
                      for r in children(child(rrs, "ResourceRecords"), "ResourceRecord")
                      for v in children(r, "Value")]
            if child(rrs, "AliasTarget") is not None or ttl_el is None or not values:
                raise ApiError(400, "InvalidInput",
                               f"Invalid request: Expected exactly one of [AliasTarget, all of "
                               f"[TTL, and ResourceRecords], or TrafficPolicyInstanceId], but "
                               f"found none in Change with [Action={action}, Name={name}, "
                               f"Type={rtype}, SetIdentifier=null] (the fake supports TTL + "
                               f"ResourceRecords only)")
            try:
                ttl = int((ttl_el.text or "").strip())
                if not 0 <= ttl <= 2147483647:
                    raise ValueError
            except ValueError:
                raise ApiError(400, "InvalidInput", f"Invalid TTL: {ttl_el.text}") from None
            changes.append((action, {"name": name, "type": rtype, "ttl": ttl, "values": values}))
        if not changes:
            raise ApiError(400, "InvalidInput", "Invalid request: ChangeBatch has no Changes")
        comment = (comment_el.text or "") if comment_el is not None else ""
        return comment, changes

    @staticmethod
    def check_values(rec):
        for v in rec["values"]:
            try:
                if rec["type"] == "A":
                    ipaddress.IPv4Address(v)
                elif rec["type"] == "AAAA":
                    ipaddress.IPv6Address(v)
            except ValueError:
                family = "IPv4" if rec["type"] == "A" else "IPv6"
                return (f"Invalid Resource Record: 'FATAL problem: {rec['type']}RRDATAIllegal"
                        f"{family}Address (Value is not a valid {family} address) encountered "
                        f"with '{v}''")
        return None

    def r53_change(self, zone_id, body):
        with self.lock:
            zone = self.hosted_zone(zone_id)
            comment, changes = self.parse_change_batch(body)
            records = copy.deepcopy(zone["records"])
            errors = []
            seen = {}
            for action, rec in changes:
                key = (rec["name"], rec["type"])
                label = f"[name='{rec['name']}', type='{rec['type']}']"
                prev = seen.get(key)
                seen[key] = action
                if prev is not None and not (prev == "DELETE" and action != "DELETE"):
                    errors.append(f"The request contains an invalid set of changes for a resource "
                                  f"record set '{rec['type']} {rec['name']}'")
                    continue
                if rec["name"] != zone["name"] and not rec["name"].endswith("." + zone["name"]):
                    errors.append(f"RRSet with DNS name {rec['name']} is not permitted in zone "
                                  f"{zone['name']}")
                    continue
                bad = self.check_values(rec)
                if bad:
                    errors.append(bad)
                    continue
                idx = next((i for i, r in enumerate(records)
                            if (r["name"], r["type"]) == key), None)
                if action == "CREATE":
                    if idx is not None:
                        errors.append(f"Tried to create resource record set {label} but it "
                                      f"already exists")
                        continue
                    records.append(rec)
                elif action == "UPSERT":
                    if idx is None:
                        records.append(rec)
                    else:
                        records[idx] = rec
                else:
                    if idx is None:
                        errors.append(f"Tried to delete resource record set {label} but it was "
                                      f"not found")
                        continue
                    cur = records[idx]
                    if cur["ttl"] != rec["ttl"] or sorted(cur["values"]) != sorted(rec["values"]):
                        errors.append(f"Tried to delete resource record set {label} but the "
                                      f"values provided do not match the current values")
                        continue
                    del records[idx]
            if errors:
                raise ApiError(400, "InvalidChangeBatch", ", ".join(f"[{e}]" for e in errors))
            zone["records"] = records
            change_id = "C" + random_upper(20)
            self.changes[change_id] = {
                "submitted_at": iso_millis(utcnow()),
                "comment": comment,
                "polls": 0,
                "insync_after": self.state["insync_after_polls"],
            }
            info = self.change_info_xml(change_id, self.changes[change_id])
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsResponse '
                f'xmlns="{R53_NS}">{info}</ChangeResourceRecordSetsResponse>')

    def r53_get_change(self, change_id):
        if change_id.startswith("/change/"):
            change_id = change_id[len("/change/"):]
        with self.lock:
            change = self.changes.get(change_id)
            if change is None:
                raise ApiError(404, "NoSuchChange",
                               f"A change with the specified change ID does not exist: {change_id}")
            info = self.change_info_xml(change_id, change)
            change["polls"] += 1
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<GetChangeResponse xmlns="{R53_NS}">'
                f"{info}</GetChangeResponse>")

    def r53_list(self, zone_id, query):
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        name, rtype, maxitems = q.get("name"), q.get("type"), q.get("maxitems", "300")
        if rtype and not name:
            raise ApiError(400, "InvalidInput", "The input is not valid: type requires name")
        try:
            limit = int(maxitems)
            if limit < 1:
                raise ValueError
        except ValueError:
            raise ApiError(400, "InvalidInput", f"Invalid maxitems: {maxitems}") from None
        limit = min(limit, 300)
        with self.lock:
            zone = self.hosted_zone(zone_id)
            records = sorted(zone["records"], key=self.rrset_key)
        if name:
            start = (self.rrset_key({"name": fqdn(name), "type": ""})[0], (rtype or "").upper())
            records = [r for r in records if self.rrset_key(r) >= start]
        page, rest = records[:limit], records[limit:]
        parts = [node("ResourceRecordSets", *(self.rrset_xml(r) for r in page)),
                 txt("IsTruncated", bool(rest))]
        if rest:
            parts += [txt("NextRecordName", r53_name(rest[0]["name"])),
                      txt("NextRecordType", rest[0]["type"])]
        parts.append(txt("MaxItems", maxitems))
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ListResourceRecordSetsResponse '
                f'xmlns="{R53_NS}">{"".join(parts)}</ListResourceRecordSetsResponse>')

    # ---- SNS -------------------------------------------------------------------------------

    def sns_call(self, action, params, akid):
        """Returns the response XML of an SNS action; raises ApiError otherwise."""
        version = params.get("Version")
        if not version:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter Version")
        if action != "Publish" or version != SNS_VERSION:
            raise ApiError(400, "InvalidAction", f"Could not find operation {action} for version "
                                                 f"{version}")
        arn = params.get("TopicArn") or params.get("TargetArn")
        if not arn:
            raise ApiError(400, "InvalidParameter", "Invalid parameter: TopicArn or TargetArn "
                                                    "Reason: no value for required parameter")
        m = SNS_ARN_RE.match(arn)
        if not m or m.group(2) != self.state["region"]:
            raise ApiError(400, "InvalidParameter", "Invalid parameter: TopicArn")
        message = params.get("Message")
        if not message:
            raise ApiError(400, "InvalidParameter", "Invalid parameter: Empty message")
        if len(message.encode("utf-8")) > SNS_MAX_MESSAGE:
            raise ApiError(400, "InvalidParameter", "Invalid parameter: Message too long")
        subject = params.get("Subject")
        if subject is not None and (not subject or len(subject) >= 100 or
                                    any(not " " <= ch <= "~" for ch in subject)):
            # The API reference: ASCII, no line breaks or control characters, under 100.
            raise ApiError(400, "InvalidParameter", "Invalid parameter: Subject")
        group = params.get("MessageGroupId")
        dedup = params.get("MessageDeduplicationId")
        if arn.endswith(".fifo"):
            if not group:
                raise ApiError(400, "InvalidParameter", "Invalid parameter: The MessageGroupId "
                                                        "parameter is required for FIFO topics")
            if not dedup:
                raise ApiError(400, "InvalidParameter",
                               "Invalid parameter: The topic should either have "
                               "ContentBasedDeduplication enabled or MessageDeduplicationId "
                               "provided explicitly")
        elif group or dedup:
            name = "MessageGroupId" if group else "MessageDeduplicationId"
            raise ApiError(400, "InvalidParameter",
                           f"Invalid parameter: {name} Reason: The request includes {name} "
                           f"parameter that is not valid for this topic type")
        with self.lock:
            if arn not in self.state["sns_topics"]:
                raise ApiError(404, "NotFound", "Topic does not exist")
            message_id = str(uuid.uuid4())
            entry = {"message_id": message_id, "topic_arn": arn, "message": message,
                     "time": iso_millis(utcnow()), "access_key": akid}
            if subject is not None:
                entry["subject"] = subject
            if group:
                entry["message_group_id"] = group
                entry["message_deduplication_id"] = dedup
            self.state["sns_messages"].append(entry)
        return (f'<PublishResponse xmlns="{SNS_NS}"><PublishResult>{txt("MessageId", message_id)}'
                f'</PublishResult><ResponseMetadata>{txt("RequestId", uuid.uuid4())}'
                f"</ResponseMetadata></PublishResponse>")

    # ---- CloudWatch --------------------------------------------------------------------------

    @staticmethod
    def cw_members(params, prefix):
        """{N: {rest: value}} for the keys prefix.member.N.rest, N counted from 1."""
        out = {}
        head = prefix + ".member."
        for key, value in params.items():
            if not key.startswith(head):
                continue
            index, _, rest = key[len(head):].partition(".")
            if not index.isdigit() or int(index) < 1:
                raise ApiError(400, "InvalidParameterValue",
                               f"The parameter {key} is not a valid member index.")
            out.setdefault(int(index), {})[rest] = value
        return out

    def cw_datum(self, n, fields, namespace, now):
        where = f"MetricData.member.{n}"

        def invalid(name, value):
            return ApiError(400, "InvalidParameterValue",
                            f"The value {value} for parameter {where}.{name} is invalid.")

        name = fields.get("MetricName")
        if not name:
            raise ApiError(400, "MissingParameter", f"The parameter {where}.MetricName is required.")
        if "Value" not in fields:
            raise ApiError(400, "MissingParameter", f"The parameter {where}.Value is required.")
        try:
            value = float(fields["Value"])
        except ValueError:
            raise invalid("Value", fields["Value"]) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise invalid("Value", fields["Value"])
        unit = fields.get("Unit", "None")
        if unit not in CW_UNITS:
            raise invalid("Unit", unit)
        when = now
        if "Timestamp" in fields:
            try:
                when = parse_iso(fields["Timestamp"], "Timestamp")
            except ValueError:
                raise invalid("Timestamp", fields["Timestamp"]) from None
            if when < now - datetime.timedelta(days=14) or when > now + datetime.timedelta(hours=2):
                raise ApiError(400, "InvalidParameterValue",
                               f"The parameter {where}.Timestamp must specify a time no more "
                               f"than two weeks in the past and no more than two hours in the "
                               f"future.")
        dims = {}
        members = self.cw_members(fields, "Dimensions")
        if len(members) > 30:
            raise ApiError(400, "InvalidParameterValue",
                           f"The collection {where}.Dimensions must not have a size greater "
                           f"than 30.")
        for m in sorted(members):
            dname, dvalue = members[m].get("Name"), members[m].get("Value")
            if not dname or dvalue is None or dvalue == "":
                missing = "Name" if not dname else "Value"
                raise ApiError(400, "MissingParameter",
                               f"The parameter {where}.Dimensions.member.{m}.{missing} is "
                               f"required.")
            dims[dname] = dvalue
        return {"namespace": namespace, "metric_name": name, "dimensions": dims, "value": value,
                "unit": unit, "timestamp": iso_millis(when)}

    def cloudwatch_call(self, action, params):
        """Returns the response XML of a CloudWatch action; raises ApiError otherwise."""
        version = params.get("Version")
        if not version:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter Version")
        if action != "PutMetricData" or version != CW_VERSION:
            raise ApiError(400, "InvalidAction", f"Could not find operation {action} for version "
                                                 f"{version}")
        namespace = params.get("Namespace")
        if not namespace:
            raise ApiError(400, "MissingParameter", "The parameter Namespace is required.")
        if namespace.startswith("AWS/"):
            raise ApiError(400, "InvalidParameterValue",
                           f"The value {namespace} for parameter Namespace is invalid.")
        members = self.cw_members(params, "MetricData")
        if not members:
            raise ApiError(400, "MissingParameter", "The parameter MetricData is required.")
        if len(members) > CW_MAX_DATUMS:
            raise ApiError(400, "InvalidParameterValue",
                           f"The collection MetricData must not have a size greater than "
                           f"{CW_MAX_DATUMS}.")
        now = utcnow()
        datums = [self.cw_datum(n, members[n], namespace, now) for n in sorted(members)]
        with self.lock:
            self.state["metrics"].extend(datums)  # all or nothing: every datum was checked
        return (f'<PutMetricDataResponse xmlns="{CW_NS}"><ResponseMetadata>'
                f'{txt("RequestId", uuid.uuid4())}</ResponseMetadata></PutMetricDataResponse>')

    # ---- IMDS ------------------------------------------------------------------------------

    def imds_new_token(self, ttl):
        token = base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()
        with self.lock:
            now = time.monotonic()
            self.imds_tokens = {t: e for t, e in self.imds_tokens.items() if e > now}
            self.imds_tokens[token] = now + ttl
        return token

    def imds_token_valid(self, token):
        with self.lock:
            expiry = self.imds_tokens.get(token or "")
            return expiry is not None and expiry > time.monotonic()

    def imds_lookup(self, path):
        """Text for a metadata path below /latest/, or None for 404."""
        with self.lock:
            imds = copy.deepcopy(self.state["imds"])
            enis = {e["eni_id"]: e for e in self.state["enis"]}
            owner = self.state["owner_id"]
        macs = imds["macs"]
        first_eni = enis.get(next(iter(macs.values()), ""), {})
        creds = imds["credentials"]
        role = imds["role"]
        tree = {
            "meta-data/instance-id": imds["instance_id"],
            "meta-data/local-ipv4": first_eni.get("private_ip", ""),
            "meta-data/mac": next(iter(macs), ""),
            "meta-data/placement/region": imds["region"],
            "meta-data/placement/availability-zone": imds["az"],
            "meta-data/iam/info": json.dumps({
                "Code": "Success", "LastUpdated": imds["last_updated"],
                "InstanceProfileArn": f"arn:aws:iam::{owner}:instance-profile/{role}",
                "InstanceProfileId": "AIPA" + hashlib.sha256(role.encode()).hexdigest()[:17].upper(),
            }, indent=2),
            f"meta-data/iam/security-credentials/{role}": json.dumps({
                "Code": "Success", "LastUpdated": imds["last_updated"], "Type": "AWS-HMAC",
                "AccessKeyId": creds["access_key"], "SecretAccessKey": creds["secret"],
                "Token": creds["token"], "Expiration": imds["expiration"],
            }, indent=2),
            "dynamic/instance-identity/document": json.dumps({
                "accountId": owner, "architecture": "x86_64",
                "availabilityZone": imds["az"], "imageId": "ami-0123456789abcdef0",
                "instanceId": imds["instance_id"], "instanceType": "t3.micro",
                "privateIp": first_eni.get("private_ip", ""), "region": imds["region"],
                "version": "2017-09-30",
            }, indent=2),
        }
        for mac, eni_id in macs.items():
            base = f"meta-data/network/interfaces/macs/{mac}/"
            tree[base + "interface-id"] = eni_id
            tree[base + "mac"] = mac
            tree[base + "local-ipv4s"] = "\n".join(
                [enis.get(eni_id, {}).get("private_ip", "")] +
                list(enis.get(eni_id, {}).get("private_ips", [])))
        path = path.rstrip("/") if path.endswith("/") and path.rstrip("/") in tree else path
        if path in tree:
            return tree[path]
        prefix = path.rstrip("/") + "/"
        entries = tree_entries(tree, prefix)
        if not entries:
            return None
        if prefix == "meta-data/iam/security-credentials/":
            return role
        return "\n".join(entries)


# --------------------------------------------------------------------------------------------
# HTTP plumbing.

HTML_ERRORS = {
    400: "Missing or Invalid Parameters",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def imds_error_body(status):
    title = f"{status} - {HTML_ERRORS.get(status, 'Error')}"
    return ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
            '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
            f" <head>\n  <title>{title}</title>\n </head>\n"
            f" <body>\n  <h1>{title}</h1>\n </body>\n</html>\n")


class AwsHandler(fake_common.BaseHandler):
    server_version = "AmazonEC2"

    def do_DELETE(self):
        self.dispatch()

    def serve(self, path, body):
        self.body = body
        if path.startswith("/_fake/"):
            self.control(path, body)
        elif path.startswith("/2013-04-01/"):
            self.route53(body)
        else:
            params = self.query_params(body)
            service = self.query_service(params)
            if service == "ec2":
                self.ec2(params)
            else:
                self.query_api(service, params)

    def query_params(self, body):
        """A Query-protocol request's parameters: the query string, then the form body."""
        query = self.path.partition("?")[2]
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if self.command == "POST" and body:
            try:
                params.update(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                                     strict_parsing=False))
            except UnicodeDecodeError:
                pass
        return params

    def query_service(self, params):
        """ec2, sns or monitoring: the service the request is signed for (as AWS routes by
        host name, which the fake's one port cannot), else the service of its Action."""
        m = re.search(r"Credential=[^/,\s]*/[^/,\s]*/[^/,\s]*/([^/,\s]+)/",
                      self.headers.get("Authorization") or "")
        if m and m.group(1) in QUERY_SERVICES:
            return m.group(1)
        if not m:
            for service, actions in QUERY_SERVICES.items():
                if params.get("Action") in actions:
                    return service
        return "ec2"

    # ---- EC2 -------------------------------------------------------------------------------

    def ec2_error(self, err, action, akid=None, fault=None):
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
               f"{txt('Code', err.code)}{txt('Message', err.message)}</Error></Errors>"
               f"{txt('RequestID', uuid.uuid4())}</Response>")
        self.fake.record_call("ec2", action, err.status, fault, access_key=akid)
        self.send(err.status, xml, "text/xml;charset=UTF-8")
        self.log_request_line(f"ec2:{action} {err.code}", err.status)

    def ec2(self, params):
        body = self.body
        action = params.get("Action") or "?"
        try:
            akid = self.fake.verify(self.command, self.path, self.headers, body, "ec2",
                                    self.fake.state["region"])
        except AuthError as e:
            self.ec2_error(auth_api_error(e, "ec2"), action)
            return
        fault = self.fault_for("ec2", action, access_key=akid)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        if kind == "throttle":
            err = ApiError(503, "RequestLimitExceeded", "Request limit exceeded.")
        elif kind == "server_error":
            err = ApiError(500, "InternalError", "An internal error has occurred", sender=False)
        elif kind == "unauthorized":
            blob = base64.b64encode(secrets.token_bytes(48)).decode().rstrip("=")
            err = ApiError(403, "UnauthorizedOperation",
                           f"You are not authorized to perform this operation. Encoded "
                           f"authorization failure message: {blob}")
        else:
            err = None
        if err is None:
            try:
                if action == "?":
                    raise ApiError(400, "MissingAction", "The request must contain the parameter "
                                                         "Action")
                xml = self.fake.ec2_call(action, params)
            except ApiError as e:
                err = e
        if err is not None:
            self.ec2_error(err, action, akid, kind)
            return
        self.fake.record_call("ec2", action, 200, kind, access_key=akid)
        self.send(200, xml, "text/xml;charset=UTF-8")
        self.log_request_line(f"ec2:{action}", 200)

    # ---- SNS and CloudWatch ------------------------------------------------------------------

    def query_error(self, service, err, action, akid=None, fault=None):
        ns = SNS_NS if service == "sns" else CW_NS
        xml = (f'<ErrorResponse xmlns="{ns}"><Error>'
               f"{txt('Type', 'Sender' if err.sender else 'Receiver')}"
               f"{txt('Code', err.code)}{txt('Message', err.message)}</Error>"
               f"{txt('RequestId', uuid.uuid4())}</ErrorResponse>")
        self.fake.record_call(service, action, err.status, fault, access_key=akid)
        self.send(err.status, xml, "text/xml", [("x-amzn-RequestId", str(uuid.uuid4()))])
        self.log_request_line(f"{service}:{action} {err.code}", err.status)

    def query_api(self, service, params):
        action = params.get("Action") or "?"
        try:
            akid = self.fake.verify(self.command, self.path, self.headers, self.body, service,
                                    self.fake.state["region"])
        except AuthError as e:
            self.query_error(service, auth_api_error(e, service), action)
            return
        fault = self.fault_for(service, action, access_key=akid)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        err = None
        if kind == "throttle":
            err = ApiError(400, "Throttling", "Rate exceeded")
        elif kind == "server_error":
            err = ApiError(500, "InternalError", "An internal error has occurred", sender=False)
        elif kind == "unauthorized":
            user = self.fake.state["accounts"].get(akid, {}).get("user", "tandem-test")
            who = f"arn:aws:iam::{self.fake.state['owner_id']}:user/{user}"
            if service == "sns":
                err = ApiError(403, "AuthorizationError",
                               f"User: {who} is not authorized to perform: SNS:{action} on "
                               f"resource: {params.get('TopicArn', '')}")
            else:
                err = ApiError(403, "AccessDenied",
                               f"User: {who} is not authorized to perform: cloudwatch:{action} "
                               f"because no identity-based policy allows the cloudwatch:{action} "
                               f"action")
        if err is None:
            try:
                if service == "sns":
                    xml = self.fake.sns_call(action, params, akid)
                else:
                    xml = self.fake.cloudwatch_call(action, params)
            except ApiError as e:
                err = e
        if err is not None:
            self.query_error(service, err, action, akid, kind)
            return
        self.fake.record_call(service, action, 200, kind, access_key=akid)
        self.send(200, xml, "text/xml", [("x-amzn-RequestId", str(uuid.uuid4()))])
        self.log_request_line(f"{service}:{action}", 200)

    # ---- Route 53 --------------------------------------------------------------------------

    R53_ROUTES = [
        ("POST", re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$"), "ChangeResourceRecordSets"),
        ("GET", re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$"), "ListResourceRecordSets"),
        ("GET", re.compile(r"^/2013-04-01/change/([^/]+)$"), "GetChange"),
    ]

    def r53_error(self, err, action, akid=None, fault=None):
        xml = (f'<?xml version="1.0"?>\n<ErrorResponse xmlns="{R53_NS}"><Error>'
               f"{txt('Type', 'Sender' if err.sender else 'Receiver')}"
               f"{txt('Code', err.code)}{txt('Message', err.message)}</Error>"
               f"{txt('RequestId', uuid.uuid4())}</ErrorResponse>")
        self.fake.record_call("route53", action, err.status, fault, access_key=akid)
        self.send(err.status, xml, "text/xml", [("x-amzn-RequestId", str(uuid.uuid4()))])
        self.log_request_line(f"route53:{action} {err.code}", err.status)

    def route53(self, body):
        path, _, query = self.path.partition("?")
        action, arg = "?", None
        for method, pattern, name in self.R53_ROUTES:
            m = pattern.match(path)
            if m and method == self.command:
                action, arg = name, urllib.parse.unquote(m.group(1))
                break
        try:
            akid = self.fake.verify(self.command, self.path, self.headers, body, "route53",
                                    R53_REGION)
        except AuthError as e:
            self.r53_error(auth_api_error(e, "route53"), action)
            return
        fault = self.fault_for("route53", action, access_key=akid)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        err = None
        if kind == "throttle":
            err = ApiError(400, "Throttling", "Rate exceeded")
        elif kind == "server_error":
            err = ApiError(500, "InternalError", "An internal error has occurred", sender=False)
        elif kind == "unauthorized":
            user = self.fake.state["accounts"].get(akid, {}).get("user", "tandem-test")
            err = ApiError(403, "AccessDenied",
                           f"User: arn:aws:iam::{self.fake.state['owner_id']}:user/{user} is not "
                           f"authorized to perform: route53:{action}")
        if err is None:
            try:
                if action == "ChangeResourceRecordSets":
                    xml = self.fake.r53_change(arg, body)
                elif action == "ListResourceRecordSets":
                    xml = self.fake.r53_list(arg, query)
                elif action == "GetChange":
                    xml = self.fake.r53_get_change(arg)
                else:
                    raise ApiError(400, "UnsupportedOperation",
                                   f"The fake does not implement {self.command} {path}")
            except ApiError as e:
                err = e
        if err is not None:
            self.r53_error(err, action, akid, kind)
            return
        self.fake.record_call("route53", action, 200, kind, access_key=akid)
        self.send(200, xml, "text/xml", [("x-amzn-RequestId", str(uuid.uuid4()))])
        self.log_request_line(f"route53:{action}", 200)

    # ---- control ---------------------------------------------------------------------------

    def control_extra(self, route, payload):
        if route == ("POST", "/_fake/imds/expire_tokens"):
            with self.fake.lock:
                n = len(self.fake.imds_tokens)
                self.fake.imds_tokens = {}
            return {"expired": n}
        return None


class ImdsHandler(fake_common.BaseHandler):
    server_version = "EC2ws"

    def error(self, status, action, fault=None):
        self.fake.record_call("imds", action, status, fault=fault)
        self.send(status, imds_error_body(status), "text/html")
        self.log_request_line(f"imds:{action}", status)

    def serve(self, path, body):
        action = path[len("/latest/"):] if path.startswith("/latest/") else path.lstrip("/")
        fault = self.fault_for("imds", action)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        fault_status = {"throttle": 429, "server_error": 500, "unauthorized": 401}.get(kind)
        if fault_status:
            self.error(fault_status, action, kind)
            return
        if path.endswith("/api/token"):
            if self.command != "PUT":
                self.error(405, action, kind)
                return
            if path != "/latest/api/token" or self.headers.get("X-Forwarded-For") is not None:
                self.error(403, action, kind)
                return
            ttl_text = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int((ttl_text or "").strip())
                if not 1 <= ttl <= IMDS_MAX_TTL:
                    raise ValueError
            except ValueError:
                self.error(400, action, kind)
                return
            token = self.fake.imds_new_token(ttl)
            self.fake.record_call("imds", action, 200, fault=kind)
            self.send(200, token, "text/plain",
                      [("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))])
            self.log_request_line(f"imds:{action}", 200)
            return
        if self.command != "GET":
            self.error(405, action, kind)
            return
        if not self.fake.imds_token_valid(self.headers.get("X-aws-ec2-metadata-token")):
            self.error(401, action, kind)
            return
        if not path.startswith("/latest/"):
            self.error(404, action, kind)
            return
        text = self.fake.imds_lookup(action)
        if text is None:
            self.error(404, action, kind)
            return
        ctype = "application/json" if text.startswith("{") else "text/plain"
        self.fake.record_call("imds", action, 200, fault=kind)
        self.send(200, text, ctype)
        self.log_request_line(f"imds:{action}", 200)


def main():
    return fake_common.main(
        __doc__, make_fake=Fake,
        https_handler=AwsHandler, https_help="HTTPS port for EC2, Route 53, /_fake/",
        second_flag="--imds-port", second_handler=ImdsHandler,
        second_help="plain HTTP port for IMDSv2",
        describe=lambda fake: f"region {fake.state['region']}")


if __name__ == "__main__":
    sys.exit(main())
