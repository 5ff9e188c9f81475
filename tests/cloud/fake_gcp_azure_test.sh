#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Self-test of fake_gcp_azure.py driven by curl: the GCE metadata and Azure IMDS token flows,
# Cloud DNS changes and record sets with their documented errors, Azure DNS record sets with
# etags, token expiry, and every fault kind once. Exit 77 (skipped) without curl or openssl.

# ok() always succeeds, so "[[ cond ]] && ok ... || bad ..." is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
CURL=/usr/bin/curl

for tool in "$PY" /usr/bin/openssl "$CURL"; do
  if [[ ! -x $tool ]]; then
    echo "SKIP: $tool is not installed (scripts/install-deps.sh)"
    exit 77
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fake_gcp_azure_test.XXXXXX")
fake_pid=
cleanup() {
  if [[ -n $fake_pid ]]; then
    kill "$fake_pid" 2>/dev/null
    wait "$fake_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() {
  echo "ok    $*"
  passed=$((passed + 1))
}
bad() {
  echo "FAIL  $*"
  failed=$((failed + 1))
}

# ---- the fake ------------------------------------------------------------------------------

PROJECT=tandem-proj
GZONE=example-zone
SUB=0b1c2d3e-0000-4000-8000-000000000001
RG=tandem-rg
AZONE=example.com

"$here/make_test_ca.sh" "$tmp/ca" || { echo "FAIL  make_test_ca.sh"; exit 1; }
cat >"$tmp/state.json" <<EOF
{
  "gcp": {"project": "$PROJECT", "zones": {"$GZONE": {"dns_name": "example.org.", "records": [
    {"name": "example.org.", "type": "TXT", "ttl": 300, "rrdatas": ["\"v=spf1 -all\""]},
    {"name": "vip.example.org.", "type": "A", "ttl": 60, "rrdatas": ["10.0.1.10"]}]}}},
  "azure": {"subscription": "$SUB", "resource_group": "$RG",
            "zones": {"$AZONE": {"records": [
              {"name": "db", "type": "A", "ttl": 300, "addresses": ["10.0.2.20"]}]}}},
  "token_ttl_s": 3599,
  "done_after_polls": 1
}
EOF

"$PY" "$here/fake_gcp_azure.py" --cert "$tmp/ca/server.pem" --key "$tmp/ca/server.key" \
  --state "$tmp/state.json" --ready-file "$tmp/ready" >"$tmp/fake.out" 2>"$tmp/fake.log" &
fake_pid=$!
for _ in $(seq 100); do
  [[ -s $tmp/ready ]] && break
  if ! kill -0 "$fake_pid" 2>/dev/null; then
    echo "FAIL  fake_gcp_azure.py exited at start:"
    cat "$tmp/fake.log"
    exit 1
  fi
  sleep 0.1
done
if [[ ! -s $tmp/ready ]]; then
  echo "FAIL  fake_gcp_azure.py wrote no ready file in 10 s"
  exit 1
fi
read -r https_port md_port < <("$PY" -c \
  'import json,sys; d=json.load(open(sys.argv[1])); print(d["https_port"], d["metadata_port"])' \
  "$tmp/ready")
[[ $(<"$tmp/fake.out") == "$(<"$tmp/ready")" ]] && ok "ready file and stdout agree: $(<"$tmp/ready")" ||
  bad "stdout '$(<"$tmp/fake.out")' differs from the ready file '$(<"$tmp/ready")'"
api=https://127.0.0.1:$https_port
md=http://127.0.0.1:$md_port
gdns=$api/dns/v1/projects/$PROJECT/managedZones/$GZONE
arm=$api/subscriptions/$SUB/resourceGroups/$RG/providers/Microsoft.Network/dnsZones/$AZONE
V='api-version=2018-05-01'

# call METHOD URL [curl args...]: sets $status, the body goes to $tmp/body, headers to $tmp/hdr.
# A connection the fake dropped shows as status 000 with curl's exit code in $curl_rc.
call() {
  local method=$1 url=$2
  shift 2
  status=$("$CURL" -sS --cacert "$tmp/ca/ca.pem" -X "$method" -o "$tmp/body" -D "$tmp/hdr" \
    -w '%{http_code}' "$@" "$url" 2>"$tmp/curl.err")
  curl_rc=$?
}
# j EXPR: a Python expression over the last body parsed as JSON (d), printed.
j() {
  "$PY" -I -S -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$tmp/body" "$1" 2>/dev/null
}
header() {
  tr -d '\r' <"$tmp/hdr" | sed -n "s/^$1: *//Ip" | tail -n 1
}
control() {  # control METHOD PATH [JSON]
  call "$1" "$api/_fake/$2" ${3:+-H 'Content-Type: application/json' -d "$3"}
}
fault() {
  control POST faults "$1"
  [[ $status == 200 ]] || bad "POST /_fake/faults $1 -> $status: $(cat "$tmp/body")"
}
body() { tr '\n' ' ' <"$tmp/body" | cut -c1-300; }

# ---- GCE metadata token --------------------------------------------------------------------

gce_token_url=$md/computeMetadata/v1/instance/service-accounts/default/token
call GET "$gce_token_url"
[[ $status == 403 ]] && grep -q 'Missing Metadata-Flavor:Google header' "$tmp/body" &&
  ok "GCE token without Metadata-Flavor: 403 'Missing Metadata-Flavor:Google header'" ||
  bad "GCE token without Metadata-Flavor: $status $(body)"
call GET "$gce_token_url" -H 'Metadata-Flavor: Google'
gtok=$(j 'd["access_token"]')
exp_in=$(j 'd["expires_in"] if isinstance(d["expires_in"], int) else "not-an-int"')
[[ $status == 200 && -n $gtok && $(j 'd["token_type"]') == Bearer && $exp_in =~ ^35(9[0-9])$ &&
   $(header Metadata-Flavor) == Google ]] &&
  ok "GCE token with Metadata-Flavor: 200, Bearer, expires_in $exp_in (a number)" ||
  bad "GCE token: $status $(body)"
call GET "$md/computeMetadata/v1/project/project-id" -H 'Metadata-Flavor: Google'
[[ $status == 200 && $(<"$tmp/body") == "$PROJECT" ]] && ok "GCE project/project-id = $PROJECT" ||
  bad "GCE project-id: $status $(body)"

# ---- Azure IMDS token ----------------------------------------------------------------------

az_token_url="$md/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"
call GET "$az_token_url"
[[ $status == 400 && $(j 'd["error"]') == bad_request_102 &&
   $(j 'd["error_description"]') == "Required metadata header not specified" ]] &&
  ok "Azure IMDS token without 'Metadata: true': 400 bad_request_102" ||
  bad "Azure IMDS token without header: $status $(body)"
call GET "$md/metadata/identity/oauth2/token?api-version=2018-02-01" -H 'Metadata: true'
[[ $status == 400 && $(j 'd["error"]') == invalid_request ]] &&
  ok "Azure IMDS token without resource: 400 invalid_request" ||
  bad "Azure IMDS token without resource: $status $(body)"
call GET "$az_token_url" -H 'Metadata: true'
atok=$(j 'd["access_token"]')
[[ $status == 200 && -n $atok && $(j 'type(d["expires_in"]).__name__') == str &&
   $(j 'type(d["expires_on"]).__name__') == str && $(j 'd["expires_in"]') == 3599 &&
   $(j 'd["resource"]') == https://management.azure.com/ ]] &&
  ok "Azure IMDS token with 'Metadata: true': 200, expires_in \"3599\" and expires_on as strings" ||
  bad "Azure IMDS token: $status $(body)"

# ---- Google Cloud DNS ----------------------------------------------------------------------

G=(-H "Authorization: Bearer $gtok")
call GET "$gdns/rrsets"
[[ $status == 401 && $(j 'd["error"]["status"]') == UNAUTHENTICATED ]] &&
  ok "Cloud DNS without a token: 401 UNAUTHENTICATED" || bad "Cloud DNS without token: $status $(body)"
call GET "$gdns/rrsets" -H "Authorization: Bearer $atok"
[[ $status == 401 && $(j 'd["error"]["message"]') == "Request had invalid authentication credentials."* ]] &&
  ok "Cloud DNS with an Azure token: 401 invalid authentication credentials" ||
  bad "Cloud DNS with Azure token: $status $(body)"

call GET "$gdns/rrsets" "${G[@]}"
[[ $status == 200 && $(j 'len(d["rrsets"])') == 2 && $(j 'd["kind"]') == dns#resourceRecordSetsListResponse ]] &&
  ok "rrsets.list: the zone's 2 record sets" || bad "rrsets.list: $status $(body)"
call GET "$gdns/rrsets?name=vip.example.org.&type=A" "${G[@]}"
[[ $status == 200 && $(j '[(r["name"], r["ttl"], r["rrdatas"]) for r in d["rrsets"]]') == "[('vip.example.org.', 60, ['10.0.1.10'])]" ]] &&
  ok "rrsets.list?name=vip.example.org.&type=A filters to one set" ||
  bad "rrsets.list filtered: $status $(body)"

add_new='{"kind":"dns#change","additions":[{"kind":"dns#resourceRecordSet","name":"app.example.org.","type":"A","ttl":30,"rrdatas":["10.0.1.11"]}]}'
call POST "$gdns/changes" "${G[@]}" -H 'Content-Type: application/json' -d "$add_new"
cid=$(j 'd["id"]')
[[ $status == 200 && $(j 'd["status"]') == pending && -n $cid && $(j 'd["kind"]') == dns#change ]] &&
  ok "changes.create (addition): 200, id $cid, status pending" || bad "changes.create: $status $(body)"
call GET "$gdns/changes/$cid" "${G[@]}"
s1=$(j 'd["status"]')
call GET "$gdns/changes/$cid" "${G[@]}"
s2=$(j 'd["status"]')
[[ $s1 == pending && $s2 == "done" ]] && ok "changes.get: pending for done_after_polls=1 GET, then done" ||
  bad "changes.get: '$s1' then '$s2'"
call GET "$gdns/changes/999" "${G[@]}"
[[ $status == 404 && $(j 'd["error"]["errors"][0]["reason"]') == notFound ]] &&
  ok "changes.get of an unknown id: 404 notFound" || bad "changes.get unknown: $status $(body)"

call POST "$gdns/changes" "${G[@]}" -H 'Content-Type: application/json' -d "$add_new"
[[ $status == 409 && $(j 'd["error"]["code"]') == 409 &&
   $(j 'd["error"]["errors"][0]["reason"]') == alreadyExists &&
   $(j 'd["error"]["message"]') == "The resource 'entity.change.additions[0]' named 'app.example.org. (A)' already exists" ]] &&
  ok "changes.create of an existing set: 409 alreadyExists with the documented message" ||
  bad "changes.create duplicate: $status $(body)"

replace_wrong='{"deletions":[{"name":"vip.example.org.","type":"A","ttl":300,"rrdatas":["10.0.1.10"]}],"additions":[{"name":"vip.example.org.","type":"A","ttl":60,"rrdatas":["10.0.1.99"]}]}'
call POST "$gdns/changes" "${G[@]}" -H 'Content-Type: application/json' -d "$replace_wrong"
[[ $status == 412 && $(j 'd["error"]["errors"][0]["reason"]') == conditionNotMet &&
   $(j 'd["error"]["message"]') == "Precondition not met for 'entity.change.deletions[0]'" ]] &&
  ok "changes.create whose deletion does not match (ttl 300 vs 60): 412 conditionNotMet" ||
  bad "changes.create mismatched deletion: $status $(body)"
call GET "$gdns/rrsets?name=vip.example.org.&type=A" "${G[@]}"
[[ $(j 'd["rrsets"][0]["rrdatas"]') == "['10.0.1.10']" ]] &&
  ok "the refused change applied nothing (atomic)" || bad "refused change left $(body)"

no_dot='{"additions":[{"name":"www.example.org","type":"A","ttl":60,"rrdatas":["10.0.1.12"]}]}'
call POST "$gdns/changes" "${G[@]}" -H 'Content-Type: application/json' -d "$no_dot"
[[ $status == 400 && $(j 'd["error"]["errors"][0]["reason"]') == invalid &&
   $(j 'd["error"]["message"]') == "Invalid value for 'entity.change.additions[0].name': 'www.example.org'" ]] &&
  ok "a name without the trailing dot: 400 invalid" || bad "name without dot: $status $(body)"

call POST "$api/dns/v1/projects/$PROJECT/managedZones/no-such-zone/changes" "${G[@]}" \
  -H 'Content-Type: application/json' -d "$add_new"
[[ $status == 404 && $(j 'd["error"]["errors"][0]["reason"]') == notFound ]] &&
  ok "changes.create in an unknown zone: 404 notFound" || bad "unknown zone: $status $(body)"
call GET "$api/dns/v1/projects/no-such-project/managedZones/$GZONE/rrsets" "${G[@]}"
[[ $status == 404 && $(j 'd["error"]["errors"][0]["reason"]') == notFound ]] &&
  ok "rrsets.list in an unknown project: 404 notFound" || bad "unknown project: $status $(body)"

replace_ok='{"deletions":[{"name":"vip.example.org.","type":"A","ttl":60,"rrdatas":["10.0.1.10"]}],"additions":[{"name":"vip.example.org.","type":"A","ttl":60,"rrdatas":["10.0.1.99"]}]}'
call POST "$gdns/changes" "${G[@]}" -H 'Content-Type: application/json' -d "$replace_ok"
rc_status=$status
call GET "$gdns/rrsets?name=vip.example.org.&type=A" "${G[@]}"
[[ $rc_status == 200 && $(j 'd["rrsets"][0]["rrdatas"]') == "['10.0.1.99']" ]] &&
  ok "changes.create with an exact deletion + addition replaces the set" ||
  bad "replace: create $rc_status, list $(body)"

# ---- Azure DNS (ARM) -----------------------------------------------------------------------

A=(-H "Authorization: Bearer $atok")
J=(-H 'Content-Type: application/json')
www="$arm/A/www?$V"
put_body='{"properties":{"TTL":300,"ARecords":[{"ipv4Address":"10.0.3.30"}]}}'

call GET "$www"
[[ $status == 401 && $(j 'd["error"]["code"]') == AuthenticationFailed ]] &&
  ok "ARM without a token: 401 AuthenticationFailed" || bad "ARM without token: $status $(body)"
call GET "$www" -H "Authorization: Bearer $gtok"
[[ $status == 401 && $(j 'd["error"]["code"]') == InvalidAuthenticationToken ]] &&
  ok "ARM with a GCE token: 401 InvalidAuthenticationToken" || bad "ARM with GCE token: $status $(body)"
call GET "$arm/A/www" "${A[@]}"
[[ $status == 400 && $(j 'd["error"]["code"]') == MissingApiVersionParameter ]] &&
  ok "ARM without api-version: 400 MissingApiVersionParameter" || bad "no api-version: $status $(body)"

call PUT "$www" "${A[@]}" "${J[@]}" -d "$put_body"
etag1=$(j 'd["etag"]')
[[ $status == 201 && -n $etag1 && $(j 'd["properties"]["ARecords"]') == "[{'ipv4Address': '10.0.3.30'}]" &&
   $(j 'd["type"]') == Microsoft.Network/dnszones/A && $(j 'd["properties"]["fqdn"]') == www.example.com. ]] &&
  ok "PUT a new record set: 201, etag $etag1" || bad "PUT create: $status $(body)"
call GET "$www" "${A[@]}"
[[ $status == 200 && $(j 'd["etag"]') == "$etag1" && $(j 'd["properties"]["TTL"]') == 300 ]] &&
  ok "GET returns it with the same etag" || bad "GET after create: $status $(body)"
call PUT "$www" "${A[@]}" "${J[@]}" -H 'If-Match: 00000000-0000-0000-0000-000000000000' -d "$put_body"
[[ $status == 412 && $(j 'd["error"]["code"]') == PreconditionFailed ]] &&
  ok "PUT with a wrong If-Match: 412 PreconditionFailed" || bad "PUT wrong If-Match: $status $(body)"
call PUT "$www" "${A[@]}" "${J[@]}" -H 'If-None-Match: *' -d "$put_body"
[[ $status == 412 && $(j 'd["error"]["code"]') == PreconditionFailed ]] &&
  ok "PUT with If-None-Match: * on an existing set: 412 PreconditionFailed" ||
  bad "PUT If-None-Match: $status $(body)"
call PUT "$www" "${A[@]}" "${J[@]}" -H "If-Match: $etag1" \
  -d '{"properties":{"TTL":60,"ARecords":[{"ipv4Address":"10.0.3.31"}]}}'
etag2=$(j 'd["etag"]')
[[ $status == 200 && -n $etag2 && $etag2 != "$etag1" && $(j 'd["properties"]["TTL"]') == 60 ]] &&
  ok "PUT with the right If-Match: 200, new etag $etag2" || bad "PUT update: $status $(body)"
call DELETE "$www" "${A[@]}"
[[ $status == 200 ]] && ok "DELETE an existing set: 200" || bad "DELETE existing: $status $(body)"
call DELETE "$www" "${A[@]}"
[[ $status == 204 && ! -s $tmp/body ]] && ok "DELETE a missing set: 204, no body" ||
  bad "DELETE missing: $status $(body)"
call GET "$www" "${A[@]}"
[[ $status == 404 && $(j 'd["error"]["code"]') == NotFound ]] && ok "GET a missing set: 404 NotFound" ||
  bad "GET missing: $status $(body)"

# ---- token expiry --------------------------------------------------------------------------

control POST expire_tokens
call GET "$arm/A/db?$V" "${A[@]}"
[[ $status == 401 && $(j 'd["error"]["code"]') == ExpiredAuthenticationToken ]] &&
  ok "after /_fake/expire_tokens: ARM 401 ExpiredAuthenticationToken" ||
  bad "ARM expired token: $status $(body)"
call GET "$gdns/rrsets" "${G[@]}"
[[ $status == 401 && $(j 'd["error"]["status"]') == UNAUTHENTICATED ]] &&
  ok "after /_fake/expire_tokens: Cloud DNS 401 UNAUTHENTICATED" || bad "Cloud DNS expired: $status $(body)"
control POST state '{"token_ttl_s": 2}'
call GET "$az_token_url" -H 'Metadata: true'
short=$(j 'd["access_token"]')
[[ $(j 'd["expires_in"]') == 2 ]] || bad "token_ttl_s 2 gave expires_in $(j 'd["expires_in"]')"
call GET "$arm/A/db?$V" -H "Authorization: Bearer $short"
before=$status
sleep 2.1
call GET "$arm/A/db?$V" -H "Authorization: Bearer $short"
[[ $before == 200 && $status == 401 && $(j 'd["error"]["code"]') == ExpiredAuthenticationToken ]] &&
  ok "a token_ttl_s=2 token works, then expires on its own: 401 ExpiredAuthenticationToken" ||
  bad "natural expiry: $before then $status $(body)"
control POST state '{"token_ttl_s": 3599}'
call GET "$gce_token_url" -H 'Metadata-Flavor: Google'
G=(-H "Authorization: Bearer $(j 'd["access_token"]')")
call GET "$az_token_url" -H 'Metadata: true'
A=(-H "Authorization: Bearer $(j 'd["access_token"]')")

# ---- faults --------------------------------------------------------------------------------

control POST reset_calls
fault '{"service":"gcp","action":"changes.create","kind":"throttle"}'
call POST "$gdns/changes" "${G[@]}" "${J[@]}" -d "$add_new"
[[ $status == 429 && $(j 'd["error"]["errors"][0]["reason"]') == rateLimitExceeded ]] &&
  ok "fault throttle (gcp changes.create): 429 rateLimitExceeded" || bad "gcp throttle: $status $(body)"
call POST "$gdns/changes" "${G[@]}" "${J[@]}" -d "$add_new"
[[ $status == 409 ]] && ok "the count-1 fault is used up: the next changes.create is answered (409)" ||
  bad "after the throttle fault: $status $(body)"
fault '{"service":"azure","action":"recordsets.put","kind":"throttle"}'
call PUT "$www" "${A[@]}" "${J[@]}" -d "$put_body"
[[ $status == 429 && $(j 'd["error"]["code"]') == TooManyRequests && $(header Retry-After) == 1 ]] &&
  ok "fault throttle (azure recordsets.put): 429 TooManyRequests, Retry-After: 1" ||
  bad "azure throttle: $status $(body)"
fault '{"service":"gcp","action":"rrsets.list","kind":"server_error"}'
call GET "$gdns/rrsets" "${G[@]}"
[[ $status == 500 && $(j 'd["error"]["errors"][0]["reason"]') == internalError ]] &&
  ok "fault server_error (gcp rrsets.list): 500 internalError" || bad "gcp server_error: $status $(body)"
fault '{"service":"azure","action":"recordsets.*","kind":"server_error","status":503}'
call GET "$arm/A/db?$V" "${A[@]}"
[[ $status == 503 && $(j 'd["error"]["code"]') == ServiceUnavailable ]] &&
  ok "fault server_error status 503 (azure recordsets.*): 503 ServiceUnavailable" ||
  bad "azure server_error: $status $(body)"
fault '{"service":"gcp","action":"*","kind":"unauthorized"}'
call GET "$gdns/changes/$cid" "${G[@]}"
[[ $status == 403 && $(j 'd["error"]["errors"][0]["reason"]') == forbidden ]] &&
  ok "fault unauthorized (gcp *): 403 forbidden" || bad "gcp unauthorized: $status $(body)"
fault '{"service":"azure","action":"recordsets.put","kind":"unauthorized"}'
call PUT "$www" "${A[@]}" "${J[@]}" -d "$put_body"
[[ $status == 403 && $(j 'd["error"]["code"]') == AuthorizationFailed &&
   $(j 'd["error"]["message"]') == *"does not have authorization to perform action 'Microsoft.Network/dnszones/A/write'"* ]] &&
  ok "fault unauthorized (azure recordsets.put): 403 AuthorizationFailed" ||
  bad "azure unauthorized: $status $(body)"
fault '{"service":"gce_metadata","action":"gce.token","kind":"delay","delay_ms":700}'
t0=$(date +%s%N)
call GET "$gce_token_url" -H 'Metadata-Flavor: Google'
ms=$((($(date +%s%N) - t0) / 1000000))
[[ $status == 200 && $ms -ge 700 ]] && ok "fault delay 700 ms (gce.token): answered 200 after $ms ms" ||
  bad "gce delay: $status after $ms ms"
fault '{"service":"azure_imds","action":"azure.token","kind":"drop"}'
call GET "$az_token_url" -H 'Metadata: true'
[[ $status == 000 && $curl_rc -ne 0 ]] &&
  ok "fault drop (azure.token): connection closed, no answer (curl exit $curl_rc)" ||
  bad "azure_imds drop: status $status, curl rc $curl_rc"
call GET "$az_token_url" -H 'Metadata: true'
[[ $status == 200 ]] && ok "IMDS answers again after the dropped request" || bad "after drop: $status"

control GET calls
got=$(j '" ".join("%s/%s:%d%s" % (c["service"], c["action"], c["status"],
                                   "/" + c["fault"] if c.get("fault") else "") for c in d)')
want="gcp/changes.create:429/throttle gcp/changes.create:409 azure/recordsets.put:429/throttle"
want+=" gcp/rrsets.list:500/server_error azure/recordsets.get:503/server_error"
want+=" gcp/changes.get:403/unauthorized azure/recordsets.put:403/unauthorized"
want+=" gce_metadata/gce.token:200/delay azure_imds/azure.token:0/drop azure_imds/azure.token:200"
[[ $got == "$want" ]] && ok "/_fake/calls lists every request with service, action, status and fault" ||
  bad "/_fake/calls: got '$got', want '$want'"
control POST reset_calls
control GET calls
[[ $(j 'len(d)') == 0 ]] && ok "/_fake/reset_calls empties the list" || bad "reset_calls: $(body)"

# ---- control state, keep-alive, log, SIGTERM -------------------------------------------------

control GET state
[[ $(j '[r["name"] for r in d["azure"]["zones"]["example.com"]["records"]]') == "['db']" &&
   $(j 'd["done_after_polls"]') == 1 ]] && ok "GET /_fake/state shows the current records" ||
  bad "GET /_fake/state: $(body)"
control POST state '{"azure": {"zones": {"example.com": {"records": [{"name": "x", "type": "MX"}]}}}}'
[[ $status == 400 && $(j 'd["error"]') == *azure.zones.example.com.records* ]] &&
  ok "POST /_fake/state with a bad record: 400 naming the key" || bad "bad state: $status $(body)"

"$CURL" -sS -v --cacert "$tmp/ca/ca.pem" "$api/_fake/faults" "$api/_fake/faults" \
  -o /dev/null -o /dev/null 2>"$tmp/curl.log"
grep -qi 're-using existing connection' "$tmp/curl.log" &&
  ok "two requests over one kept-alive connection" || bad "keep-alive: connection not reused"

grep -q 'PUT azure:recordsets.put -> 201' "$tmp/fake.log" && ok "the fake logs one line per request" ||
  bad "fake log lacks 'PUT azure:recordsets.put -> 201'"

kill "$fake_pid"
wait "$fake_pid"
fake_rc=$?
fake_pid=
[[ $fake_rc -eq 0 ]] && ok "fake_gcp_azure.py exits 0 on SIGTERM" ||
  bad "fake_gcp_azure.py exited $fake_rc on SIGTERM"

echo
if ((failed > 0)); then
  echo "--- fake_gcp_azure.py log (last 40 lines) ---"
  tail -n 40 "$tmp/fake.log"
fi
echo "fake_gcp_azure_test: $passed passed, $failed failed"
((failed == 0))
