#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fake Google Cloud DNS + GCE metadata and Azure DNS (ARM) + Azure IMDS for tandem's cloud tests.

The shapes follow shared/cloud/API_SHAPES.md sections 8 and 9; the "Fake Google Cloud and Azure
endpoints" part of README.md beside this file documents the state file, the errors and the
/_fake/ control API. The DNS APIs accept only bearer tokens that this fake's own metadata services
issued, so a client that passes here got its token the way it must on a real VM. Run with
Debian's /usr/bin/python3 (stdlib only).
"""

import base64
import copy
import datetime
import hashlib
import ipaddress
import json
import os
import re
import secrets
import sys
import time
import urllib.parse
import uuid

# fake_common.py, the server machinery both fakes share, sits beside this script (run as a script,
# not from a package); importing it must not leave a __pycache__ in the source tree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
import fake_common  # noqa: E402
from fake_common import DROPPED, FakeBase, iso_millis, tree_entries, utcnow  # noqa: E402

fake_common.PROGRAM = "fake_gcp_azure"

RECORD_TYPES = ("A", "AAAA")
ARM_DNS_API_VERSIONS = ("2016-04-01", "2017-09-01", "2017-10-01", "2018-05-01",
                        "2023-07-01-preview")
IMDS_TOKEN_API_VERSIONS = ("2018-02-01", "2019-08-01")
IMDS_INSTANCE_API_VERSIONS = ("2017-04-02", "2017-08-01", "2017-12-01", "2018-02-01",
                              "2018-04-02", "2018-10-01", "2019-02-01", "2019-03-11",
                              "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
                              "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15",
                              "2020-09-01", "2020-10-01", "2020-12-01", "2021-01-01",
                              "2021-02-01", "2021-03-01", "2021-05-01", "2021-10-01",
                              "2021-11-01", "2021-11-15", "2021-12-13", "2023-07-01")
# A token from Azure IMDS is good for ARM only when its audience is one of these.
ARM_AUDIENCES = ("https://management.azure.com/", "https://management.azure.com",
                 "https://management.core.windows.net/", "https://management.core.windows.net")
GOOGLE_JSON = "application/json; charset=UTF-8"
AZURE_JSON = "application/json; charset=utf-8"


def dotnet_time(epoch):
    """ARM's way of printing a UTC time in its messages: 11/24/2026 7:01:04 AM."""
    dt = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    hour = dt.hour % 12 or 12
    return f"{dt.month}/{dt.day}/{dt.year} {hour}:{dt:%M:%S} {'AM' if dt.hour < 12 else 'PM'}"


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# --------------------------------------------------------------------------------------------
# Errors. Each API has its own error shape; the handlers raise and the dispatcher renders.


class ApiError(Exception):
    """status + code (Google: reason, Azure: error.code) + message, rendered per service."""

    def __init__(self, status, code, message, headers=()):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)


GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}

GOOGLE_AUTH_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.")
GOOGLE_MISSING_AUTH_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project.")


def google_error_body(err):
    item = {"message": err.message, "domain": "global", "reason": err.code}
    if err.status == 401:
        item.update({"message": "Invalid Credentials" if err.code == "authError"
                     else "Login Required.", "location": "Authorization",
                     "locationType": "header"})
    elif err.status == 429:
        item["domain"] = "usageLimits"
    return {"error": {"code": err.status, "message": err.message, "errors": [item],
                      "status": GOOGLE_STATUS.get(err.status, "UNKNOWN")}}


def g_invalid(field, value):
    return ApiError(400, "invalid", f"Invalid value for '{field}': '{value}'")


def g_required(field):
    return ApiError(400, "required", f"The '{field}' parameter is required but was missing.")


def g_not_found(field, name):
    return ApiError(404, "notFound", f"The '{field}' resource named '{name}' does not exist.")


# --------------------------------------------------------------------------------------------
# State: loading, validation and defaults.


def fqdn(name):
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _obj(parent, key, where):
    value = parent.setdefault(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object")
    return value


def _str(obj, key, where, default):
    value = obj.setdefault(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key}: expected a non-empty string")
    return value


def _int(obj, key, where, default, minimum):
    value = obj.setdefault(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where}.{key}: expected an integer >= {minimum}")
    return value


def check_address(rtype, value, where):
    """A/AAAA data must be an address of the right family; returns its canonical text."""
    try:
        addr = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        addr = None
    if addr is None or addr.version != (4 if rtype == "A" else 6):
        raise ValueError(f"{where}: not an IPv{4 if rtype == 'A' else 6} address: {value!r}")
    return str(addr)


def in_zone(name, dns_name):
    return name == dns_name or name.endswith("." + dns_name)


def normalize_state(state):
    """Validates the state in place and fills in defaults; ValueError names the bad key."""
    if not isinstance(state, dict):
        raise ValueError("state: expected a JSON object")
    _int(state, "token_ttl_s", "state", 3599, 1)
    _int(state, "done_after_polls", "state", 1, 0)

    gcp = _obj(state, "gcp", "gcp")
    project = _str(gcp, "project", "gcp", "tandem-test")
    _str(gcp, "project_number", "gcp", "123456789012")
    _str(gcp, "instance_zone", "gcp", "us-central1-a")
    _str(gcp, "instance_id", "gcp", "4520031799277581759")
    _str(gcp, "instance_name", "gcp", "tandem-node-1")
    _str(gcp, "service_account", "gcp", f"tandem@{project}.iam.gserviceaccount.com")
    scopes = gcp.setdefault("scopes", ["https://www.googleapis.com/auth/cloud-platform"])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError("gcp.scopes: expected a list of strings")
    zones = _obj(gcp, "zones", "gcp.zones")
    for zname, zone in zones.items():
        where = f"gcp.zones.{zname}"
        if not isinstance(zone, dict):
            raise ValueError(f"{where}: expected an object")
        dns_name = zone["dns_name"] = fqdn(_str(zone, "dns_name", where, ""))
        records = zone.setdefault("records", [])
        if not isinstance(records, list):
            raise ValueError(f"{where}.records: expected a list")
        seen = set()
        for j, rec in enumerate(records):
            rwhere = f"{where}.records[{j}]"
            if not isinstance(rec, dict):
                raise ValueError(f"{rwhere}: expected an object")
            rec["name"] = fqdn(_str(rec, "name", rwhere, ""))
            if not in_zone(rec["name"], dns_name):
                raise ValueError(f"{rwhere}.name: {rec['name']} is not in zone {dns_name}")
            rec["type"] = _str(rec, "type", rwhere, "").upper()
            _int(rec, "ttl", rwhere, 300, 0)
            rrdatas = rec.get("rrdatas")
            if not isinstance(rrdatas, list) or not rrdatas or \
                    not all(isinstance(d, str) for d in rrdatas):
                raise ValueError(f"{rwhere}.rrdatas: expected a non-empty list of strings")
            if rec["type"] in RECORD_TYPES:
                rec["rrdatas"] = [check_address(rec["type"], d, f"{rwhere}.rrdatas[{k}]")
                                  for k, d in enumerate(rrdatas)]
            if (rec["name"], rec["type"]) in seen:
                raise ValueError(f"{rwhere}: {rec['name']} {rec['type']} is listed twice")
            seen.add((rec["name"], rec["type"]))

    azure = _obj(state, "azure", "azure")
    _str(azure, "subscription", "azure", "11111111-2222-3333-4444-555555555555")
    _str(azure, "resource_group", "azure", "tandem-rg")
    _str(azure, "tenant_id", "azure", "72f988bf-86f1-41af-91ab-2d7cd011db47")
    _str(azure, "principal_id", "azure", "0f4e1b2a-3c5d-4e6f-8a9b-0c1d2e3f4a5b")
    _str(azure, "client_id", "azure", "5b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e")
    _str(azure, "location", "azure", "westeurope")
    _str(azure, "vm_name", "azure", "tandem-node-1")
    _str(azure, "vm_id", "azure", "02aab8a4-74ef-476e-8182-f6d2ba4166a6")
    zones = _obj(azure, "zones", "azure.zones")
    for zname in list(zones):
        where = f"azure.zones.{zname}"
        zone = zones[zname]
        if not isinstance(zone, dict):
            raise ValueError(f"{where}: expected an object")
        canonical = zname.strip().lower().rstrip(".")
        if canonical != zname:
            if canonical in zones:
                raise ValueError(f"{where}: the same zone as azure.zones.{canonical}")
            zones[canonical] = zones.pop(zname)
        _str(zone, "etag", where, str(uuid.uuid4()))
        records = zone.setdefault("records", [])
        if not isinstance(records, list):
            raise ValueError(f"{where}.records: expected a list")
        seen = set()
        for j, rec in enumerate(records):
            rwhere = f"{where}.records[{j}]"
            if not isinstance(rec, dict):
                raise ValueError(f"{rwhere}: expected an object")
            rec["name"] = _str(rec, "name", rwhere, "").strip().lower()
            rec["type"] = _str(rec, "type", rwhere, "").upper()
            if rec["type"] not in RECORD_TYPES:
                raise ValueError(f"{rwhere}.type: the fake serves A and AAAA, not {rec['type']}")
            _int(rec, "ttl", rwhere, 3600, 0)
            addrs = rec.setdefault("addresses", [])
            if not isinstance(addrs, list):
                raise ValueError(f"{rwhere}.addresses: expected a list")
            rec["addresses"] = [check_address(rec["type"], a, f"{rwhere}.addresses[{k}]")
                                for k, a in enumerate(addrs)]
            _str(rec, "etag", rwhere, str(uuid.uuid4()))
            meta = rec.setdefault("metadata", {})
            if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
                raise ValueError(f"{rwhere}.metadata: expected an object of strings")
            if (rec["name"], rec["type"]) in seen:
                raise ValueError(f"{rwhere}: {rec['name']} {rec['type']} is listed twice")
            seen.add((rec["name"], rec["type"]))
    return state


# --------------------------------------------------------------------------------------------
# The fake: state, tokens, faults, call log and the APIs.


def rr_key(rec):
    return rec["name"], rec["type"]


def same_rrdatas(rtype, a, b):
    def canon(values):
        out = []
        for v in values:
            if rtype in RECORD_TYPES:
                try:
                    v = str(ipaddress.ip_address(v))
                except ValueError:
                    pass
            out.append(v)
        return sorted(out)

    return canon(a) == canon(b)


def google_rrset(rec):
    return {"kind": "dns#resourceRecordSet", "name": rec["name"], "type": rec["type"],
            "ttl": rec["ttl"], "rrdatas": list(rec["rrdatas"])}


class Fake(FakeBase):
    SERVICES = ("gcp", "azure", "gce_metadata", "azure_imds")  # what a fault may name

    def __init__(self, state):
        super().__init__(state)
        self.tokens = {}  # token -> {"kind": "gce"|"azure", "expires": epoch, "resource": str}
        self.changes = {}  # (project, zone) -> {change id: change}

    def normalize(self, state):
        return normalize_state(state)

    def fault_extra(self, spec):
        status = spec.get("status", 500)
        if status not in (500, 503):
            raise ValueError("fault.status: 500 or 503 (used by server_error)")
        return {"status": status}

    # ---- tokens ----------------------------------------------------------------------------

    def issue_token(self, kind, resource=""):
        """A new bearer token for 'gce' or 'azure'; returns (token, issued, expires) in epoch s."""
        now = time.time()
        with self.lock:
            ttl = self.state["token_ttl_s"]
            azure = self.state["azure"]
            self.tokens = {t: v for t, v in self.tokens.items() if v["expires"] > now - 86400}
        if kind == "gce":
            token = "ya29.c." + b64url(secrets.token_bytes(96))
        else:
            # Shaped like an Entra ID JWT so clients that peek at exp/aud can; the signature
            # is random because nothing but this fake ever checks the token.
            header = {"typ": "JWT", "alg": "RS256", "kid": "tandem-fake"}
            claims = {"aud": resource, "iss": f"https://sts.windows.net/{azure['tenant_id']}/",
                      "iat": int(now), "nbf": int(now), "exp": int(now) + ttl,
                      "oid": azure["principal_id"], "sub": azure["principal_id"],
                      "tid": azure["tenant_id"], "appid": azure["client_id"]}
            token = ".".join([b64url(json.dumps(header).encode()),
                              b64url(json.dumps(claims).encode()),
                              b64url(secrets.token_bytes(256))])
        with self.lock:
            self.tokens[token] = {"kind": kind, "expires": now + ttl, "resource": resource}
        return token, now, now + ttl

    def check_token(self, headers, kind):
        """(ok, reason, info): reason is 'missing', 'invalid', 'expired' or 'audience'."""
        auth = headers.get("Authorization") or ""
        if not auth:
            return False, "missing", None
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False, "invalid", None
        with self.lock:
            info = self.tokens.get(token.strip())
            info = dict(info) if info else None
        if info is None or info["kind"] != kind:
            return False, "invalid", None
        if info["expires"] <= time.time():
            return False, "expired", info
        if kind == "azure" and info["resource"] not in ARM_AUDIENCES:
            return False, "audience", info
        return True, None, info

    def expire_tokens(self, kind=None):
        now = time.time()
        n = 0
        with self.lock:
            for info in self.tokens.values():
                if (kind is None or info["kind"] == kind) and info["expires"] > now:
                    info["expires"] = now - 1
                    n += 1
        return n

    # ---- Google Cloud DNS ------------------------------------------------------------------

    def g_zone(self, project, zone):
        gcp = self.state["gcp"]
        if project != gcp["project"] and project != gcp["project_number"]:
            raise g_not_found("parameters.project", project)
        z = gcp["zones"].get(zone)
        if z is None:
            raise g_not_found("parameters.managedZone", zone)
        return z

    def g_managed_zone(self, project, zone):
        with self.lock:
            z = self.g_zone(project, zone)
            return {"kind": "dns#managedZone", "name": zone, "dnsName": z["dns_name"],
                    "description": "", "visibility": "public",
                    "id": str(int(hashlib.sha256(zone.encode()).hexdigest()[:15], 16)),
                    "nameServers": [f"ns-cloud-a{i}.googledomains.com." for i in range(1, 5)],
                    "creationTime": "2026-01-01T00:00:00.000Z"}

    @staticmethod
    def g_parse_rrset(item, field, dns_name, need_ttl):
        if not isinstance(item, dict):
            raise g_invalid(field, item)
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise g_required(f"{field}.name")
        if not name.endswith("."):
            raise g_invalid(f"{field}.name", name)
        name = name.lower()
        if not in_zone(name, dns_name):
            raise g_invalid(f"{field}.name", name)
        rtype = item.get("type")
        if not isinstance(rtype, str) or not rtype:
            raise g_required(f"{field}.type")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", rtype):
            raise g_invalid(f"{field}.type", rtype)
        rtype = rtype.upper()
        ttl = item.get("ttl")
        if ttl is None:
            if need_ttl:
                raise g_required(f"{field}.ttl")
        elif isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
            raise g_invalid(f"{field}.ttl", ttl)
        rrdatas = item.get("rrdatas")
        if not isinstance(rrdatas, list) or not rrdatas:
            raise g_required(f"{field}.rrdata")
        for k, data in enumerate(rrdatas):
            if not isinstance(data, str) or not data:
                raise g_invalid(f"{field}.rrdata[{k}]", data)
            if rtype in RECORD_TYPES:
                try:
                    check_address(rtype, data, "")
                except ValueError:
                    raise g_invalid(f"{field}.rrdata[{k}]", data) from None
        return {"name": name, "type": rtype, "ttl": ttl, "rrdatas": list(rrdatas)}

    def g_change_create(self, project, zone, body):
        try:
            change = json.loads(body) if body.strip() else None
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        if not isinstance(change, dict) or not (change.get("additions") or change.get("deletions")):
            raise g_required("entity.change")
        with self.lock:
            z = self.g_zone(project, zone)
            additions, deletions = [], []
            for key, out, need_ttl in (("deletions", deletions, False),
                                       ("additions", additions, True)):
                items = change.get(key) or []
                if not isinstance(items, list):
                    raise g_invalid(f"entity.change.{key}", items)
                for i, item in enumerate(items):
                    out.append(self.g_parse_rrset(item, f"entity.change.{key}[{i}]", z["dns_name"],
                                                  need_ttl))
            # Atomic: every deletion must match what is there now, exactly; every addition must
            # land on a name/type that is free once the deletions are done. Nothing is applied
            # unless all of them pass.
            current = {rr_key(r): r for r in z["records"]}
            for i, d in enumerate(deletions):
                have = current.get(rr_key(d))
                label = f"{d['name']} ({d['type']})"
                if have is None:
                    raise g_not_found(f"entity.change.deletions[{i}]", label)
                if d["ttl"] != have["ttl"] or not same_rrdatas(d["type"], d["rrdatas"],
                                                                 have["rrdatas"]):
                    raise ApiError(412, "conditionNotMet",
                                   f"Precondition not met for 'entity.change.deletions[{i}]'")
                del current[rr_key(d)]
            for i, a in enumerate(additions):
                if rr_key(a) in current:
                    raise ApiError(409, "alreadyExists",
                                   f"The resource 'entity.change.additions[{i}]' named "
                                   f"'{a['name']} ({a['type']})' already exists")
                current[rr_key(a)] = a
            z["records"] = [current[k] for k in sorted(current)]
            log_ = self.changes.setdefault((self.state["gcp"]["project"], zone), {})
            change_id = str(len(log_) + 1)
            polls = self.state["done_after_polls"]
            entry = {"kind": "dns#change", "id": change_id,
                     "startTime": iso_millis(utcnow()),
                     "status": "pending" if polls > 0 else "done", "polls_left": polls}
            if additions:
                entry["additions"] = [google_rrset(a) for a in additions]
            if deletions:
                entry["deletions"] = [google_rrset(d) for d in deletions]
            log_[change_id] = entry
            return {k: v for k, v in entry.items() if k != "polls_left"}

    def g_change_get(self, project, zone, change_id):
        with self.lock:
            self.g_zone(project, zone)
            entry = self.changes.get((self.state["gcp"]["project"], zone), {}).get(change_id)
            if entry is None:
                raise g_not_found("parameters.changeId", change_id)
            # The first done_after_polls GETs see "pending"; the change is "done" after them.
            if entry["polls_left"] > 0:
                entry["polls_left"] -= 1
                out = dict(entry, status="pending")
            else:
                entry["status"] = "done"
                out = dict(entry)
            out.pop("polls_left")
            return out

    def g_change_list(self, project, zone):
        with self.lock:
            self.g_zone(project, zone)
            log_ = self.changes.get((self.state["gcp"]["project"], zone), {})
            return {"kind": "dns#changesListResponse",
                    "changes": [{k: v for k, v in c.items() if k != "polls_left"}
                                for c in log_.values()]}

    def g_rrsets_list(self, project, zone, query):
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        name = params.get("name")
        rtype = params.get("type")
        if name is not None and not name.endswith("."):
            raise g_invalid("parameters.name", name)
        if rtype is not None and name is None:
            raise ApiError(400, "required", "Required parameter: name")
        max_results = None
        if "maxResults" in params:
            try:
                max_results = int(params["maxResults"])
                if max_results < 1:
                    raise ValueError
            except ValueError:
                raise g_invalid("parameters.maxResults", params["maxResults"]) from None
        start = 0
        if params.get("pageToken"):
            try:
                start = int(base64.urlsafe_b64decode(params["pageToken"] + "==").decode())
            except (ValueError, UnicodeDecodeError):
                raise g_invalid("parameters.pageToken", params["pageToken"]) from None
        with self.lock:
            z = self.g_zone(project, zone)
            recs = [google_rrset(r) for r in sorted(z["records"], key=rr_key)
                    if (name is None or r["name"] == name.lower())
                    and (rtype is None or r["type"] == rtype.upper())]
        out = {"kind": "dns#resourceRecordSetsListResponse"}
        end = len(recs) if max_results is None else min(len(recs), start + max_results)
        out["rrsets"] = recs[start:end]
        if end < len(recs):
            out["nextPageToken"] = b64url(str(end).encode())
        return out

    # ---- Azure DNS (ARM) -------------------------------------------------------------------

    def a_scope(self, sub, rg, zone, rtype=None, name=None):
        az = self.state["azure"]
        scope = (f"/subscriptions/{az['subscription']}/resourceGroups/{az['resource_group']}"
                 f"/providers/Microsoft.Network/dnszones/{zone}")
        if rtype:
            scope += f"/{rtype}"
        if name:
            scope += f"/{name}"
        return scope

    def a_zone(self, sub, rg, zone):
        az = self.state["azure"]
        if sub.lower() != az["subscription"].lower():
            raise ApiError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be "
                                                        f"found.")
        if rg.lower() != az["resource_group"].lower():
            raise ApiError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be "
                                                         f"found.")
        z = az["zones"].get(zone.lower().rstrip("."))
        if z is None:
            raise ApiError(404, "ParentResourceNotFound",
                           f"Can not perform requested operation on nested resource. Parent "
                           f"resource '{zone}' not found.")
        return z

    def a_recordset(self, zone, rec):
        fq = zone + "." if rec["name"] == "@" else f"{rec['name']}.{zone}."
        key, field = (("ARecords", "ipv4Address") if rec["type"] == "A"
                      else ("AAAARecords", "ipv6Address"))
        return {"id": self.a_scope(None, None, zone, rec["type"], rec["name"]),
                "name": rec["name"], "type": f"Microsoft.Network/dnszones/{rec['type']}",
                "etag": rec["etag"],
                "properties": {"metadata": dict(rec.get("metadata", {})), "TTL": rec["ttl"],
                               "fqdn": fq, "provisioningState": "Succeeded",
                               "targetResource": {},
                               key: [{field: a} for a in rec["addresses"]]}}

    @staticmethod
    def a_find(z, rtype, name):
        for rec in z["records"]:
            if rec["type"] == rtype and rec["name"] == name.lower():
                return rec
        return None

    @staticmethod
    def a_not_found(rtype, name, az):
        return ApiError(404, "NotFound",
                        f"The resource record '{name}' does not exist in resource group "
                        f"'{az['resource_group']}' of subscription '{az['subscription']}'.")

    def a_get(self, sub, rg, zone, rtype, name):
        with self.lock:
            z = self.a_zone(sub, rg, zone)
            rec = self.a_find(z, rtype, name)
            if rec is None:
                raise self.a_not_found(rtype, name, self.state["azure"])
            return 200, self.a_recordset(zone.lower().rstrip("."), rec)

    def a_list(self, sub, rg, zone, rtype):
        with self.lock:
            z = self.a_zone(sub, rg, zone)
            zname = zone.lower().rstrip(".")
            recs = [self.a_recordset(zname, r) for r in sorted(z["records"], key=rr_key)
                    if rtype is None or r["type"] == rtype]
            return 200, {"value": recs}

    @staticmethod
    def a_parse_body(body, rtype):
        try:
            doc = json.loads(body) if body.strip() else None
        except ValueError as e:
            raise ApiError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: "
                           f"'{e}'.") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("properties"), dict):
            raise ApiError(400, "BadRequest", "The request body must contain a 'properties' "
                                              "object.")
        props = doc["properties"]
        ttl = props.get("TTL", 3600)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 2147483647:
            raise ApiError(400, "BadRequest", f"The value '{ttl}' is not a valid TTL.")
        meta = props.get("metadata") or {}
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "The metadata must be an object.")
        key, field = (("ARecords", "ipv4Address") if rtype == "A"
                      else ("AAAARecords", "ipv6Address"))
        for other in ("ARecords", "AAAARecords", "CNAMERecord", "MXRecords", "NSRecords",
                      "PTRRecords", "SRVRecords", "TXTRecords", "CAARecords", "SOARecord"):
            if other != key and props.get(other):
                raise ApiError(400, "BadRequest",
                               f"The record set of type '{rtype}' cannot contain {other}.")
        records = props.get(key) or []
        if not isinstance(records, list):
            raise ApiError(400, "BadRequest", f"{key} must be a list.")
        addresses = []
        for r in records:
            value = r.get(field) if isinstance(r, dict) else None
            try:
                addresses.append(check_address(rtype, value, ""))
            except ValueError:
                raise ApiError(400, "BadRequest",
                               f"The {field} value '{value}' is not a valid "
                               f"IPv{4 if rtype == 'A' else 6} address.") from None
        return ttl, addresses, {str(k): str(v) for k, v in meta.items()}

    def a_put(self, sub, rg, zone, rtype, name, body, if_match, if_none_match):
        ttl, addresses, meta = self.a_parse_body(body, rtype)
        with self.lock:
            z = self.a_zone(sub, rg, zone)
            rec = self.a_find(z, rtype, name)
            check_preconditions(rec, if_match, if_none_match)
            if rec is None:
                rec = {"name": name.lower(), "type": rtype}
                z["records"].append(rec)
                status = 201
            else:
                status = 200
            # PUT replaces the whole record set and always mints a new etag.
            rec.update({"ttl": ttl, "addresses": addresses, "metadata": meta,
                        "etag": str(uuid.uuid4())})
            return status, self.a_recordset(zone.lower().rstrip("."), rec)

    def a_delete(self, sub, rg, zone, rtype, name, if_match):
        with self.lock:
            z = self.a_zone(sub, rg, zone)
            rec = self.a_find(z, rtype, name)
            if rec is None and not if_match:
                return 204, None
            check_preconditions(rec, if_match, None)
            z["records"].remove(rec)
            return 200, None


def strip_etag(value):
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def check_preconditions(rec, if_match, if_none_match):
    """ARM DNS's If-Match / If-None-Match rules; raises 412 PreconditionFailed."""
    if if_match is not None and if_match.strip():
        wanted = [strip_etag(v) for v in if_match.split(",")]
        if rec is None:
            raise ApiError(412, "PreconditionFailed",
                           f"The condition '{if_match.strip()}' in the If-Match header was not "
                           f"satisfied. The record set does not exist.")
        if "*" not in wanted and rec["etag"] not in wanted:
            raise ApiError(412, "PreconditionFailed",
                           f"The condition '{if_match.strip()}' in the If-Match header was not "
                           f"satisfied. The current was '{rec['etag']}'.")
    # Only '*' means anything in If-None-Match; "Other values will be ignored".
    if if_none_match is not None and if_none_match.strip() == "*" and rec is not None:
        raise ApiError(412, "PreconditionFailed",
                       "The condition '*' in the If-None-Match header was satisfied. The record "
                       "set already exists.")


# --------------------------------------------------------------------------------------------
# HTTP plumbing.


class BaseHandler(fake_common.BaseHandler):
    """Both ports answer DELETE and PATCH too, and name themselves without a Python version."""

    def version_string(self):
        return self.server_version

    def send_json(self, status, obj, content_type, headers=()):
        body = "" if obj is None else json.dumps(obj, indent=2) + "\n"
        self.send(status, body, content_type, headers)

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()


GOOGLE_ROUTES = [
    ("POST", re.compile(r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/changes$"),
     "changes.create"),
    ("GET", re.compile(r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/changes$"),
     "changes.list"),
    ("GET", re.compile(r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/changes/([^/]+)$"),
     "changes.get"),
    ("GET", re.compile(r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)/rrsets$"),
     "rrsets.list"),
    ("GET", re.compile(r"^/dns/v1/projects/([^/]+)/managedZones/([^/]+)$"), "managedZones.get"),
]

ARM_ZONE_RE = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Network/dnsZones/"
    r"([^/]+)(?:/([^/]+)(?:/([^/]+))?)?/?$", re.I)


class DnsHandler(BaseHandler):
    """The HTTPS port: Google Cloud DNS, Azure DNS (ARM) and the /_fake/ control API."""

    server_version = "ESF"

    def serve(self, path, body):
        if path.startswith("/_fake/"):
            self.control(path, body)
        elif path.startswith("/dns/"):
            self.google(body)
        else:
            self.azure(body)

    # ---- Google Cloud DNS ------------------------------------------------------------------

    def google_reply(self, status, obj, action, fault=None, headers=()):
        code = None
        if isinstance(obj, ApiError):
            code = obj.code
            headers = list(headers) + obj.headers
            obj = google_error_body(obj)
        self.fake.record_call("gcp", action, status, fault, code=code)
        self.send_json(status, obj, GOOGLE_JSON, [("Vary", "Origin, X-Origin, Referer")] +
                       list(headers))
        self.log_request_line(f"gcp:{action}{' ' + code if code else ''}", status)

    def google(self, body):
        path, _, query = self.path.partition("?")
        action, args = "?", ()
        for method, pattern, name in GOOGLE_ROUTES:
            m = pattern.match(path)
            if m and method == self.command:
                action, args = name, tuple(urllib.parse.unquote(g) for g in m.groups())
                break
        ok, reason, _ = self.fake.check_token(self.headers, "gce")
        if not ok:
            err = ApiError(401, "required" if reason == "missing" else "authError",
                           GOOGLE_MISSING_AUTH_MESSAGE if reason == "missing"
                           else GOOGLE_AUTH_MESSAGE)
            www = 'Bearer realm="https://accounts.google.com/"'
            if reason != "missing":
                www += ', error="invalid_token"'
            self.google_reply(401, err, action, headers=[("WWW-Authenticate", www)])
            return
        fault = self.fault_for("gcp", action)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        err = None
        if kind == "throttle":
            err = ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded")
        elif kind == "server_error":
            err = (ApiError(503, "backendError", "Backend Error") if fault["status"] == 503
                   else ApiError(500, "internalError", "Internal Error"))
        elif kind == "unauthorized":
            err = ApiError(403, "forbidden", "Forbidden")
        if err is None:
            try:
                fake = self.fake
                if action == "changes.create":
                    result = fake.g_change_create(args[0], args[1], body)
                elif action == "changes.get":
                    result = fake.g_change_get(*args)
                elif action == "changes.list":
                    result = fake.g_change_list(*args)
                elif action == "rrsets.list":
                    result = fake.g_rrsets_list(args[0], args[1], query)
                elif action == "managedZones.get":
                    result = fake.g_managed_zone(*args)
                else:
                    raise ApiError(404, "notFound", f"The fake does not serve {self.command} "
                                                    f"{path}")
            except ApiError as e:
                err = e
        if err is not None:
            self.google_reply(err.status, err, action, kind)
            return
        self.google_reply(200, result, action, kind)

    # ---- Azure DNS (ARM) -------------------------------------------------------------------

    def azure_reply(self, status, obj, action, fault=None, headers=()):
        code = None
        if isinstance(obj, ApiError):
            code = obj.code
            headers = list(headers) + obj.headers
            obj = {"error": {"code": obj.code, "message": obj.message}}
        rid = str(uuid.uuid4())
        self.fake.record_call("azure", action, status, fault, code=code)
        self.send_json(status, obj, AZURE_JSON,
                       [("x-ms-request-id", rid), ("x-ms-correlation-request-id", rid),
                        ("Cache-Control", "private")] + list(headers))
        self.log_request_line(f"azure:{action}{' ' + code if code else ''}", status)

    def azure_action(self, path):
        """(action, match) for an ARM DNS path, or ('?', None)."""
        m = ARM_ZONE_RE.match(path)
        if not m:
            return "?", None
        rtype, name = m.group(4), m.group(5)
        verb = {"GET": "get", "PUT": "put", "DELETE": "delete"}.get(self.command)
        if rtype is None:
            return ("zones.get" if verb == "get" else "?"), m
        if name is None:
            return ("recordsets.list" if verb == "get" else "?"), m
        return (f"recordsets.{verb}" if verb else "?"), m

    def azure_auth_error(self, reason, info):
        az = self.fake.state["azure"]
        if reason == "missing":
            return ApiError(401, "AuthenticationFailed",
                            "Authentication failed. The 'Authorization' header is missing.")
        if reason == "expired":
            return ApiError(401, "ExpiredAuthenticationToken",
                            f"The access token expiry UTC time '{dotnet_time(info['expires'])}' "
                            f"is earlier than current UTC time '{dotnet_time(time.time())}'.")
        if reason == "audience":
            return ApiError(401, "InvalidAuthenticationTokenAudience",
                            f"The access token has been obtained for wrong audience or resource "
                            f"'{info['resource']}'. It should exactly match with one of the "
                            f"allowed audiences "
                            f"{', '.join(repr(a) for a in ARM_AUDIENCES)}.")
        return ApiError(401, "InvalidAuthenticationToken", "The access token is invalid.",
                        [("WWW-Authenticate",
                          f'Bearer authorization_uri="https://login.windows.net/'
                          f'{az["tenant_id"]}", error="invalid_token", '
                          f'error_description="The access token is invalid."')])

    def azure(self, body):
        path, _, query = self.path.partition("?")
        action, m = self.azure_action(path)
        ok, reason, info = self.fake.check_token(self.headers, "azure")
        if not ok:
            self.azure_reply(401, self.azure_auth_error(reason, info), action)
            return
        fault = self.fault_for("azure", action)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        err = None
        if kind == "throttle":
            op = "Read" if self.command == "GET" else "Write"
            err = ApiError(429, "TooManyRequests",
                           f"The request is being throttled as the limit has been reached for "
                           f"operation type - {op}_ObservationWindow_00:05:00. For more "
                           f"information, refer to - https://aka.ms/armthrottling",
                           [("Retry-After", "1")])
        elif kind == "server_error":
            if fault["status"] == 503:
                err = ApiError(503, "ServiceUnavailable",
                               "The service is temporarily unavailable. Please try again later.",
                               [("Retry-After", "1")])
            else:
                rid = uuid.uuid4()
                err = ApiError(500, "InternalServerError",
                               f"Encountered internal server error. Diagnostic information: "
                               f"timestamp '{utcnow():%Y%m%dT%H%M%SZ}', subscription id "
                               f"'{self.fake.state['azure']['subscription']}', tracking id "
                               f"'{rid}', request correlation id '{rid}'.")
        elif kind == "unauthorized":
            err = self.azure_forbidden(m)
        if err is None:
            try:
                status, result = self.azure_call(action, m, query, body)
            except ApiError as e:
                err = e
        if err is not None:
            self.azure_reply(err.status, err, action, kind)
            return
        self.azure_reply(status, result, action, kind)

    def azure_forbidden(self, m):
        az = self.fake.state["azure"]
        verb = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(self.command, "action")
        if m is not None:
            what = "Microsoft.Network/dnszones" + (f"/{m.group(4)}" if m.group(4) else "")
            scope = self.path.split("?", 1)[0]
        else:
            what, scope = "Microsoft.Network/dnszones", self.path.split("?", 1)[0]
        return ApiError(403, "AuthorizationFailed",
                        f"The client '{az['principal_id']}' with object id '{az['principal_id']}' "
                        f"does not have authorization to perform action '{what}/{verb}' over "
                        f"scope '{scope}' or the scope is invalid. If access was recently "
                        f"granted, please refresh your credentials.")

    def azure_call(self, action, m, query, body):
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        version = params.get("api-version")
        if not version:
            raise ApiError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all "
                           "requests.")
        if m is None or action == "?":
            raise ApiError(404, "NotFound", f"The fake does not serve {self.command} "
                                            f"{self.path.split('?', 1)[0]}")
        if version not in ARM_DNS_API_VERSIONS:
            raise ApiError(400, "NoRegisteredProviderFound",
                           f"No registered resource provider found for location 'global' and API "
                           f"version '{version}' for type 'dnszones'. The supported "
                           f"api-versions are '{', '.join(ARM_DNS_API_VERSIONS)}'. The supported "
                           f"locations are ', global'.")
        sub, rg, zone, rtype, name = (urllib.parse.unquote(g) if g else g for g in m.groups())
        fake = self.fake
        if action == "zones.get":
            with fake.lock:
                z = fake.a_zone(sub, rg, zone)
                zname = zone.lower().rstrip(".")
                return 200, {"id": fake.a_scope(sub, rg, zname), "name": zname,
                             "type": "Microsoft.Network/dnszones", "etag": z["etag"],
                             "location": "global", "tags": {},
                             "properties": {"maxNumberOfRecordSets": 10000,
                                            "numberOfRecordSets": len(z["records"]),
                                            "nameServers": [f"ns1-0{i}.azure-dns.com."
                                                            for i in range(1, 5)],
                                            "zoneType": "Public"}}
        if action == "recordsets.list" and rtype.lower() in ("recordsets", "all"):
            return fake.a_list(sub, rg, zone, None)
        if rtype.upper() not in RECORD_TYPES:
            raise ApiError(400, "InvalidResourceType",
                           f"The resource type '{rtype}' could not be found in the namespace "
                           f"'Microsoft.Network/dnszones' for api version '{version}'. The fake "
                           f"serves only A and AAAA record sets.")
        rtype = rtype.upper()
        if action == "recordsets.list":
            return fake.a_list(sub, rg, zone, rtype)
        if action == "recordsets.get":
            return fake.a_get(sub, rg, zone, rtype, name)
        if action == "recordsets.put":
            return fake.a_put(sub, rg, zone, rtype, name, body, self.headers.get("If-Match"),
                              self.headers.get("If-None-Match"))
        return fake.a_delete(sub, rg, zone, rtype, name, self.headers.get("If-Match"))

    # ---- control ---------------------------------------------------------------------------

    def control_extra(self, route, payload):
        if route == ("POST", "/_fake/expire_tokens"):
            which = (payload or {}).get("service") if isinstance(payload, dict) else None
            kinds = {None: None, "gcp": "gce", "gce_metadata": "gce", "azure": "azure",
                     "azure_imds": "azure"}
            if which not in kinds:
                raise ValueError("expire_tokens.service: gcp or azure (or absent for both)")
            return {"expired": self.fake.expire_tokens(kinds[which])}
        return None


# --------------------------------------------------------------------------------------------
# The metadata port: GCE metadata server and Azure IMDS.


def google_html_error(status, text):
    title = {403: "Forbidden", 404: "Not Found", 429: "Too Many Requests",
             500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
    return ("<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
            f"  <title>Error {status} ({title})!!1</title>\n"
            f"  <p><b>{status}.</b> <ins>That\u2019s an error.</ins>\n"
            f"  <p>{text} <ins>That\u2019s all we know.</ins>\n")


class MetadataHandler(BaseHandler):
    server_version = "Metadata Server for VM"

    def serve(self, path, body):
        if path.startswith("/computeMetadata/"):
            self.gce(path)
        elif path.startswith("/metadata/"):
            self.imds(path)
        else:
            self.fake.record_call("metadata", "?", 404)
            self.send(404, google_html_error(404, f"The requested URL <code>{path}</code> was "
                                                  f"not found on this server."),
                      "text/html; charset=UTF-8")
            self.log_request_line(f"metadata:{path}", 404)

    # ---- GCE -------------------------------------------------------------------------------

    def gce_reply(self, status, body, ctype, action, code=None, fault=None, headers=()):
        self.fake.record_call("gce_metadata", action, status, fault, code=code)
        self.send(status, body, ctype, [("Metadata-Flavor", "Google")] + list(headers))
        self.log_request_line(f"gce_metadata:{action}", status)

    def gce_tree(self):
        with self.fake.lock:
            gcp = copy.deepcopy(self.fake.state["gcp"])
        sa = {"email": gcp["service_account"], "aliases": "default",
              "scopes": "\n".join(gcp["scopes"]) + "\n"}
        tree = {
            "project/project-id": gcp["project"],
            "project/numeric-project-id": gcp["project_number"],
            "instance/id": gcp["instance_id"],
            "instance/name": gcp["instance_name"],
            "instance/hostname": f"{gcp['instance_name']}.{gcp['instance_zone']}.c."
                                 f"{gcp['project']}.internal",
            "instance/zone": f"projects/{gcp['project_number']}/zones/{gcp['instance_zone']}",
        }
        for account in ("default", gcp["service_account"]):
            for key, value in sa.items():
                tree[f"instance/service-accounts/{account}/{key}"] = value
            tree[f"instance/service-accounts/{account}/token"] = None
        return gcp, tree

    def gce(self, path):
        rel = path[len("/computeMetadata/v1/"):] if path.startswith("/computeMetadata/v1/") \
            else None
        gcp, tree = self.gce_tree()
        is_token = rel is not None and re.fullmatch(r"instance/service-accounts/[^/]+/token",
                                                    rel) is not None
        action = "gce.token" if is_token else "gce.metadata"
        fault = self.fault_for("gce_metadata", action)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None
        html = "text/html; charset=UTF-8"
        if kind in ("throttle", "server_error", "unauthorized"):
            status = {"throttle": 429, "unauthorized": 403}.get(kind) or fault["status"]
            self.gce_reply(status, google_html_error(status, "The fake metadata server was told "
                                                             "to fail this request."),
                           html, action, fault=kind)
            return
        if self.headers.get("X-Forwarded-For") is not None:
            self.gce_reply(403, google_html_error(403, "Your client does not have permission to "
                                                       f"get URL <code>{path}</code> from this "
                                                       "server. Request had a X-Forwarded-For "
                                                       "header."),
                           html, action, fault=kind)
            return
        if self.headers.get("Metadata-Flavor") != "Google":
            self.gce_reply(403, google_html_error(403, "Your client does not have permission to "
                                                       f"get URL <code>{path}</code> from this "
                                                       "server. Missing Metadata-Flavor:Google "
                                                       "header."),
                           html, action, fault=kind)
            return
        if self.command != "GET":
            self.gce_reply(405, google_html_error(405, f"The request method {self.command} is "
                                                       "inappropriate for the URL."),
                           html, action, fault=kind)
            return
        account = rel.split("/")[2] if is_token else None
        if is_token and account in ("default", gcp["service_account"]):
            token, _, expires = self.fake.issue_token("gce")
            body = json.dumps({"access_token": token, "expires_in": int(expires - time.time()),
                               "token_type": "Bearer"})
            self.gce_reply(200, body, "application/json", action, fault=kind)
            return
        text = None
        if rel is not None:
            if rel in tree and tree[rel] is not None:
                text = tree[rel]
            else:
                entries = tree_entries(tree, rel.rstrip("/") + "/" if rel else "")
                if entries:
                    text = "\n".join(entries) + "\n"
        if text is None:
            self.gce_reply(404, google_html_error(404, f"The requested URL <code>{path}</code> "
                                                       "was not found on this server."),
                           html, action, fault=kind)
            return
        self.gce_reply(200, text, "application/text", action, fault=kind)

    # ---- Azure IMDS ------------------------------------------------------------------------

    def imds_reply(self, status, obj, action, code=None, fault=None, headers=()):
        self.fake.record_call("azure_imds", action, status, fault, code=code)
        self.send_json(status, obj, AZURE_JSON,
                       [("Server", "IMDS/150.870.65.1253"),
                        ("x-ms-request-id", str(uuid.uuid4()))] + list(headers))
        self.log_request_line(f"azure_imds:{action}{' ' + code if code else ''}", status)

    def send_response(self, code, message=None):
        # IMDS names itself in its own Server header; do not add the handler's as well.
        if self.path.startswith("/metadata/"):
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())
            return
        super().send_response(code, message)

    def imds(self, path):
        params = dict(urllib.parse.parse_qsl(self.path.partition("?")[2],
                                             keep_blank_values=True))
        is_token = path.rstrip("/") == "/metadata/identity/oauth2/token"
        action = "azure.token" if is_token else "azure.instance"
        fault = self.fault_for("azure_imds", action)
        if fault is DROPPED:
            return
        kind = fault["kind"] if fault else None

        def fail(status, code, desc, headers=()):
            self.imds_reply(status, {"error": code, "error_description": desc}, action, code,
                            kind, headers)

        if kind == "throttle":
            fail(429, "too_many_requests", "Too many requests. Please retry after some time.",
                 [("Retry-After", "1")])
            return
        if kind == "server_error":
            fail(fault["status"], "unknown_error", "An unexpected error occurred in the "
                                                   "Instance Metadata Service.")
            return
        if kind == "unauthorized":
            fail(400, "invalid_request", "Identity not found")
            return
        if (self.headers.get("Metadata") or "").strip().lower() != "true":
            fail(400, "bad_request_102", "Required metadata header not specified")
            return
        if self.command != "GET":
            fail(405, "method_not_allowed", f"The request method {self.command} is not allowed.")
            return
        if is_token:
            self.imds_token(params, fail, action, kind)
        else:
            self.imds_instance(path, params, action, kind)

    def imds_token(self, params, fail, action, kind):
        az = self.fake.state["azure"]
        version = params.get("api-version")
        if not version:
            fail(400, "invalid_request", "Required query variable 'api-version' is missing")
            return
        if version not in IMDS_TOKEN_API_VERSIONS:
            fail(400, "invalid_request", f"Invalid api-version '{version}'")
            return
        resource = params.get("resource")
        if not resource:
            fail(400, "invalid_request", "Required audience parameter not specified")
            return
        for key, want in (("client_id", az["client_id"]), ("object_id", az["principal_id"])):
            if key in params and params[key].lower() != want.lower():
                fail(400, "invalid_request", "Identity not found")
                return
        if "mi_res_id" in params:
            fail(400, "invalid_request", "Identity not found")
            return
        token, issued, expires = self.fake.issue_token("azure", resource)
        self.imds_reply(200, {"access_token": token, "refresh_token": "",
                              "expires_in": str(int(expires - issued)),
                              "expires_on": str(int(expires)), "not_before": str(int(issued)),
                              "resource": resource, "token_type": "Bearer",
                              "client_id": az["client_id"]}, action, fault=kind)

    def imds_instance(self, path, params, action, kind):
        version = params.get("api-version")
        if not version or version not in IMDS_INSTANCE_API_VERSIONS:
            what = ("api-version was not specified in the request" if not version
                    else f"api-version '{version}' is not supported")
            self.imds_reply(400, {"error": f"Bad request. {what}. For more information refer to "
                                           f"aka.ms/azureimds",
                                  "newest-versions": list(IMDS_INSTANCE_API_VERSIONS[-3:][::-1])},
                            action, "bad_request", kind)
            return
        with self.fake.lock:
            az = copy.deepcopy(self.fake.state["azure"])
        compute = {"azEnvironment": "AzurePublicCloud", "location": az["location"],
                   "name": az["vm_name"], "osType": "Linux",
                   "resourceGroupName": az["resource_group"],
                   "resourceId": f"/subscriptions/{az['subscription']}/resourceGroups/"
                                 f"{az['resource_group']}/providers/Microsoft.Compute/"
                                 f"virtualMachines/{az['vm_name']}",
                   "subscriptionId": az["subscription"], "vmId": az["vm_id"],
                   "vmSize": "Standard_D2s_v3", "zone": ""}
        doc = {"compute": compute, "network": {"interface": []}}
        node = doc
        for part in [p for p in path[len("/metadata/instance"):].split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                self.imds_reply(404, {"error": "Not found"}, action, "not_found", kind)
                return
            node = node[part]
        if params.get("format") == "text" and not isinstance(node, (dict, list)):
            self.fake.record_call("azure_imds", action, 200, fault=kind)
            self.send(200, str(node), "text/plain; charset=utf-8",
                      [("Server", "IMDS/150.870.65.1253")])
            self.log_request_line(f"azure_imds:{action}", 200)
            return
        self.imds_reply(200, node, action, fault=kind)


def main():
    return fake_common.main(
        __doc__, make_fake=Fake,
        https_handler=DnsHandler, https_help="HTTPS port for Cloud DNS, Azure DNS and /_fake/",
        second_flag="--metadata-port", second_handler=MetadataHandler,
        second_help="plain HTTP port for the GCE metadata server and Azure IMDS",
        describe=lambda fake: f"gcp project {fake.state['gcp']['project']}, azure subscription "
                              f"{fake.state['azure']['subscription']}")


if __name__ == "__main__":
    sys.exit(main())
