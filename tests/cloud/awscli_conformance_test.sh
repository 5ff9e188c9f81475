#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Proves fake_aws.py speaks the real wire format: Debian's aws CLI (its own vendored botocore,
# its own XML parsers, its own IMDS credential provider) and curl's SigV4 signer drive the fake
# and must see the documented results and errors. Exit 77 (skipped) without the CLI or botocore.

# ok() always succeeds, so "[[ cond ]] && ok ... || bad ..." is an if-then-else here.
# shellcheck disable=SC2015
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AWS=/usr/bin/aws
PY=/usr/bin/python3
CURL=/usr/bin/curl

for tool in "$AWS" "$PY" /usr/bin/openssl "$CURL"; do
  if [[ ! -x $tool ]]; then
    echo "SKIP: $tool is not installed (scripts/install-deps.sh)"
    exit 77
  fi
done
if ! "$PY" -c 'import botocore.auth' 2>/dev/null; then
  echo "SKIP: python3-botocore is not installed (scripts/install-deps.sh)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/awscli_conformance.XXXXXX")
fake_pid=
r53_pid=
query_pid=
cleanup() {
  for pid in $r53_pid $query_pid; do
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n $fake_pid ]]; then
    kill "$fake_pid" 2>/dev/null
    wait "$fake_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# Route 53 and the SNS / CloudWatch checks run beside the EC2 ones (the CLI's start-up dominates
# the run time), so each section has its own scratch files (suffix sfx) and results file; the
# totals are counted at the end.
sfx=.main
ok() {
  echo "ok    $*"
  echo ok >>"$tmp/results$sfx"
}
bad() {
  echo "FAIL  $*"
  echo FAIL >>"$tmp/results$sfx"
}

# ---- the fake ------------------------------------------------------------------------------

AKID=AKIDTANDEMCONFORM01
SECRET='conform/Secret+Key/0123456789abcdefghijklmn'
SESSION_AKID=ASIATANDEMSESSION01
SESSION_SECRET='session/Secret+Key/9876543210'
SESSION_TOKEN='FwoGZXIvYXdzEtandemTestSessionToken/+=='
REGION=eu-west-1
VPC_A=vpc-0a0a0a0a0a0a0a0a0
RTB_A1=rtb-0a0a0a0a0a0a0a0a1
RTB_A2=rtb-0a0a0a0a0a0a0a0a2
ENI_A=eni-0aaaaaaaaaaaaaaa1
ENI_B=eni-0bbbbbbbbbbbbbbb1
ALLOC=eipalloc-0e1e1e1e1e1e1e1e1
ZONE=Z0TANDEMCONFORM
VIP=10.0.100.10/32
TOPIC=arn:aws:sns:$REGION:111122223333:tandem-alerts

"$here/make_test_ca.sh" "$tmp/ca" || { echo "FAIL  make_test_ca.sh"; exit 1; }
: >"$tmp/empty"
mkdir -p "$tmp/home"

{
  cat <<EOF
{
  "region": "$REGION",
  "owner_id": "111122223333",
  "accounts": {
    "$AKID": {"secret": "$SECRET", "user": "tandem-ci"},
    "$SESSION_AKID": {"secret": "$SESSION_SECRET", "session_token": "$SESSION_TOKEN"}
  },
  "imds": {"instance_id": "i-0aaaaaaaaaaaaaaa1", "az": "${REGION}a", "role": "tandem-ha-node",
           "macs": {"0a:00:00:00:00:01": "$ENI_A"}},
  "vpcs": [{"vpc_id": "$VPC_A", "cidr_blocks": ["10.0.0.0/16", "100.64.0.0/16"]},
           {"vpc_id": "vpc-0b0b0b0b0b0b0b0b0", "cidr_blocks": ["10.1.0.0/16"]}],
  "route_tables": [
    {"route_table_id": "$RTB_A1", "vpc_id": "$VPC_A", "main": true, "routes": [
      {"destination_cidr": "10.0.0.0/16", "gateway_id": "local"},
      {"destination_cidr": "0.0.0.0/0", "gateway_id": "igw-0c0c0c0c0c0c0c0c0"},
      {"destination_cidr": "$VIP", "network_interface_id": "$ENI_A"}]},
    {"route_table_id": "$RTB_A2", "vpc_id": "$VPC_A", "routes": [
      {"destination_cidr": "10.0.0.0/16", "gateway_id": "local"},
      {"destination_cidr": "$VIP", "network_interface_id": "$ENI_A"}]}
EOF
  for i in 1 2 3 4 5 6; do
    echo "    ,{\"route_table_id\": \"rtb-0b0b0b0b0b0b0b0b$i\", \"vpc_id\": \"vpc-0b0b0b0b0b0b0b0b0\","
    echo "      \"routes\": [{\"destination_cidr\": \"10.1.0.0/16\", \"gateway_id\": \"local\"}]}"
  done
  cat <<EOF
  ],
  "enis": [{"eni_id": "$ENI_A", "instance_id": "i-0aaaaaaaaaaaaaaa1", "private_ip": "10.0.1.10"},
           {"eni_id": "$ENI_B", "instance_id": "i-0bbbbbbbbbbbbbbb1", "private_ip": "10.0.2.10",
            "private_ips": ["10.0.2.11"]}],
  "addresses": [{"allocation_id": "$ALLOC", "public_ip": "203.0.113.10"}],
  "zones": [{"zone_name": "${REGION}a", "zone_id": "euw1-az1", "state": "available"},
            {"zone_name": "${REGION}b", "zone_id": "euw1-az2", "state": "impaired",
             "messages": ["Elevated API error rates"]},
            {"zone_name": "${REGION}c", "zone_id": "euw1-az3", "state": "available"}],
  "hosted_zones": {"$ZONE": {"name": "example.test", "records": [
    {"name": "example.test.", "type": "TXT", "ttl": 300, "values": ["\"v=spf1 -all\""]},
    {"name": "db.example.test.", "type": "A", "ttl": 300, "values": ["10.0.1.20"]},
    {"name": "vip.example.test.", "type": "A", "ttl": 60, "values": ["10.0.1.10"]}]}},
  "insync_after_polls": 1,
  "sns_topics": ["$TOPIC"]
}
EOF
} >"$tmp/state.json"

"$PY" "$here/fake_aws.py" --cert "$tmp/ca/server.pem" --key "$tmp/ca/server.key" \
  --state "$tmp/state.json" --ready-file "$tmp/ready" >"$tmp/fake.out" 2>"$tmp/fake.log" &
fake_pid=$!
for _ in $(seq 100); do
  [[ -s $tmp/ready ]] && break
  if ! kill -0 "$fake_pid" 2>/dev/null; then
    echo "FAIL  fake_aws.py exited at start:"
    cat "$tmp/fake.log"
    exit 1
  fi
  sleep 0.1
done
if [[ ! -s $tmp/ready ]]; then
  echo "FAIL  fake_aws.py wrote no ready file in 10 s"
  exit 1
fi
read -r https_port imds_port < <("$PY" -c \
  'import json,sys; d=json.load(open(sys.argv[1])); print(d["https_port"], d["imds_port"])' \
  "$tmp/ready")
endpoint=https://127.0.0.1:$https_port
imds=http://127.0.0.1:$imds_port
echo "fake_aws.py pid $fake_pid: $endpoint, IMDS $imds"

# ---- helpers -------------------------------------------------------------------------------

# A clean environment, so nothing from the caller's ~/.aws, proxies or AWS_* leaks in.
base_env=(PATH=/usr/bin:/bin HOME="$tmp/home" LC_ALL=C.UTF-8 AWS_CA_BUNDLE="$tmp/ca/ca.pem"
          AWS_CONFIG_FILE="$tmp/empty" AWS_SHARED_CREDENTIALS_FILE="$tmp/empty" AWS_PAGER=
          AWS_RETRY_MODE=standard AWS_MAX_ATTEMPTS=1)
cred_env=(AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_EC2_METADATA_DISABLED=true)

# aws_run [VAR=value...] -- CLI ARGS...: sets rc, out (stdout) and err (stderr).
aws_run() {
  local envs=()
  while [[ $1 != -- ]]; do
    envs+=("$1")
    shift
  done
  shift
  rc=0
  env -i "${base_env[@]}" "${cred_env[@]}" "${envs[@]}" "$AWS" --endpoint-url "$endpoint" \
    --output text "$@" >"$tmp/out$sfx" 2>"$tmp/err$sfx" || rc=$?
  # Text output puts list items on tabs or lines; one space between words is easier to compare.
  out=$(tr '\t\n' '  ' <"$tmp/out$sfx" | sed 's/ *$//')
  err=$(<"$tmp/err$sfx")
}

# expect_out WHAT WANT [VAR=value...] -- ARGS...: the CLI succeeds and prints exactly WANT.
expect_out() {
  local what=$1 want=$2
  shift 2
  aws_run "$@"
  if [[ $rc -ne 0 ]]; then
    bad "$what: aws exited $rc: $err"
  elif [[ $out != "$want" ]]; then
    bad "$what: got '$out', want '$want'"
  else
    ok "$what: $want"
  fi
}

# expect_error WHAT CODE MESSAGE [VAR=value...] -- ARGS...: the CLI fails and prints the fake's
# code and a message containing MESSAGE.
expect_error() {
  local what=$1 code=$2 message=$3
  shift 3
  aws_run "$@"
  if [[ $rc -eq 0 ]]; then
    bad "$what: aws succeeded, want error $code"
  elif [[ $err != *"An error occurred ($code)"* ]]; then
    bad "$what: want error $code, got: $err"
  elif [[ $err != *"$message"* ]]; then
    bad "$what: error $code without '$message': $err"
  else
    ok "$what: $code ($message)"
  fi
}

control() {  # control METHOD PATH [JSON]
  "$CURL" -sS --fail-with-body --cacert "$tmp/ca/ca.pem" -X "$1" ${3:+-d "$3"} \
    -H 'Content-Type: application/json' "$endpoint$2"
}

fault() {  # fault JSON: installs one fault
  control POST /_fake/faults "$1" >/dev/null || bad "installing fault $1"
}

# calls_of SERVICE ACTION: the statuses of every recorded call of that action, space-separated.
calls_of() {
  control GET /_fake/calls | "$PY" -c '
import json, sys
calls = json.load(sys.stdin)
print(" ".join(str(c["status"]) for c in calls if c["service"] == sys.argv[1] and c["action"] == sys.argv[2]))
' "$1" "$2"
}

state_get() {  # state_get PYTHON_EXPR_ON_s
  control GET /_fake/state | "$PY" -c 'import json,sys; s=json.load(sys.stdin); print('"$1"')'
}

# The CLI costs about a second of CPU per call, so once the CLI has shown that it parses a shape,
# further cases of the same shape are sent with curl's SigV4 signer (independent of botocore)
# and checked on the raw body.

# ec2_raw FORM_PARAMS [REGION]: one Query call; sets status and body.
ec2_raw() {
  body=$("$CURL" -sS --cacert "$tmp/ca/ca.pem" --aws-sigv4 "aws:amz:${2:-$REGION}:ec2" \
    --user "$AKID:$SECRET" -w '\n%{http_code}' -d "$1&Version=2016-11-15" \
    -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' "$endpoint/" 2>&1)
  status=${body##*$'\n'}
  body=${body%$'\n'*}
}

# expect_ec2_error WHAT STATUS CODE MESSAGE FORM_PARAMS [REGION]: the exact EC2 error shape.
expect_ec2_error() {
  local what=$1 want_status=$2 code=$3 message=$4
  ec2_raw "$5" "${6:-}"
  if [[ $status == "$want_status" &&
        $body == '<?xml version="1.0" encoding="UTF-8"?>'$'\n''<Response><Errors><Error><Code>'"$code</Code><Message>"*"$message"*'</Message></Error></Errors><RequestID>'*'</RequestID></Response>' ]]; then
    ok "$what: $status $code ($message)"
  else
    bad "$what: want $want_status $code '$message', got $status $body"
  fi
}

# r53_raw METHOD PATH [XML_FILE] [REGION]: one Route 53 call; sets status and body.
r53_raw() {
  local data=()
  if [[ -n ${3:-} ]]; then
    data=(--data-binary "@$3" -H 'Content-Type: text/xml')
  fi
  body=$("$CURL" -sS --cacert "$tmp/ca/ca.pem" --aws-sigv4 "aws:amz:${4:-us-east-1}:route53" \
    --user "$AKID:$SECRET" -w '\n%{http_code}' -X "$1" "${data[@]}" "$endpoint$2" 2>&1)
  status=${body##*$'\n'}
  body=${body%$'\n'*}
}

# expect_r53_error WHAT STATUS CODE MESSAGE METHOD PATH [XML_FILE] [REGION]: the <ErrorResponse>
# shape, Type Sender for 4xx and Receiver for 5xx.
expect_r53_error() {
  local what=$1 want_status=$2 code=$3 message=$4 type=Sender
  r53_raw "$5" "$6" "${7:-}" "${8:-}"
  if ((want_status >= 500)); then
    type=Receiver
  fi
  if [[ $status == "$want_status" &&
        $body == *'<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>'"$type</Type><Code>$code</Code><Message>"*"$message"*'</Message></Error><RequestId>'*'</RequestId></ErrorResponse>' ]]; then
    ok "$what: $status $code ($message)"
  else
    bad "$what: want $want_status $code '$message', got $status $body"
  fi
}

# ---- Route 53 (beside the EC2 checks) --------------------------------------------------------

route53_checks() {
  local change_id change_status statuses=() create=$tmp/create.xml
  local rrset=/2013-04-01/hostedzone/$ZONE/rrset/
  cat >"$tmp/upsert.json" <<EOF
{"Comment": "tandem failover", "Changes": [{"Action": "UPSERT", "ResourceRecordSet":
  {"Name": "vip.example.test", "Type": "A", "TTL": 10, "ResourceRecords": [{"Value": "10.0.2.10"}]}}]}
EOF
  aws_run -- route53 change-resource-record-sets --region us-east-1 --hosted-zone-id "$ZONE" \
    --change-batch "file://$tmp/upsert.json" --query 'ChangeInfo.[Id,Status]'
  read -r change_id change_status <<<"$out"
  if [[ $rc -eq 0 && $change_id == /change/C* && $change_status == PENDING ]]; then
    ok "change-resource-record-sets UPSERT: $change_id PENDING"
  else
    bad "change-resource-record-sets UPSERT: '$out' $err"
  fi
  for _ in 1 2 3 4; do
    aws_run -- route53 get-change --region us-east-1 --id "${change_id#/change/}" \
      --query 'ChangeInfo.[Id,Status]'
    if [[ $rc -ne 0 ]]; then
      bad "get-change: $err"
      break
    fi
    statuses+=("$out")
    [[ $out == *INSYNC ]] && break
  done
  if [[ "${statuses[*]}" == "$change_id PENDING $change_id INSYNC" ]]; then
    ok "get-change $change_id: PENDING then INSYNC"
  else
    bad "get-change: ${statuses[*]}"
  fi
  expect_out "list-resource-record-sets shows the new A record" "vip.example.test. A 10 10.0.2.10" -- \
    route53 list-resource-record-sets --region us-east-1 --hosted-zone-id "$ZONE" \
    --query "ResourceRecordSets[?Name=='vip.example.test.'] | [0].[Name,Type,TTL,ResourceRecords[0].Value]"
  expect_out "list-resource-record-sets --page-size 1 walks NextRecordName in DNS order" \
    "example.test. db.example.test. vip.example.test." -- \
    route53 list-resource-record-sets --region us-east-1 --hosted-zone-id "$ZONE" --page-size 1 \
    --query 'ResourceRecordSets[].Name'

  cat >"$tmp/delete.json" <<EOF
{"Changes": [{"Action": "DELETE", "ResourceRecordSet":
  {"Name": "vip.example.test.", "Type": "A", "TTL": 10, "ResourceRecords": [{"Value": "10.9.9.9"}]}}]}
EOF
  expect_error "DELETE that does not match" InvalidChangeBatch \
    "Tried to delete resource record set [name='vip.example.test.', type='A'] but the values provided do not match the current values" -- \
    route53 change-resource-record-sets --region us-east-1 --hosted-zone-id "$ZONE" \
    --change-batch "file://$tmp/delete.json"
  expect_error "route53 wrong secret" SignatureDoesNotMatch \
    "The request signature we calculated does not match" AWS_SECRET_ACCESS_KEY=not-the-secret -- \
    route53 list-resource-record-sets --region us-east-1 --hosted-zone-id "$ZONE"

  r53_raw GET "/2013-04-01/hostedzone/$ZONE/rrset?maxitems=1&name=vip.example.test.&type=A"
  if [[ $status == 200 && $body == *"<Name>vip.example.test.</Name>"* &&
        $body == *"<IsTruncated>false</IsTruncated><MaxItems>1</MaxItems>"* ]]; then
    ok "ListResourceRecordSets name=/type=/maxitems= starts at the record"
  else
    bad "ListResourceRecordSets name=/type=: $status $body"
  fi
  r53_raw GET "/2013-04-01/hostedzone/$ZONE/rrset?maxitems=1&name=db.example.test."
  if [[ $body == *"<Name>db.example.test.</Name>"*"<IsTruncated>true</IsTruncated><NextRecordName>vip.example.test.</NextRecordName><NextRecordType>A</NextRecordType>"* ]]; then
    ok "ListResourceRecordSets truncated page names the next record"
  else
    bad "ListResourceRecordSets truncation: $status $body"
  fi
  cat >"$create" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>CREATE</Action><ResourceRecordSet><Name>vip.example.test.</Name><Type>A</Type><TTL>10</TTL><ResourceRecords><ResourceRecord><Value>10.0.2.10</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>
EOF
  expect_r53_error "CREATE of an existing record" 400 InvalidChangeBatch \
    "[Tried to create resource record set [name='vip.example.test.', type='A'] but it already exists]" \
    POST "$rrset" "$create"
  expect_r53_error "unknown hosted zone" 404 NoSuchHostedZone \
    "No hosted zone found with ID: Z0NOSUCHZONE" POST /2013-04-01/hostedzone/Z0NOSUCHZONE/rrset/ "$create"
  expect_r53_error "unknown change" 404 NoSuchChange "does not exist" GET /2013-04-01/change/C0NOSUCH
  fault '{"service":"route53","action":"ChangeResourceRecordSets","kind":"throttle","count":1}'
  expect_r53_error "throttle fault" 400 Throttling "Rate exceeded" POST "$rrset" "$create"
  fault '{"service":"route53","action":"ChangeResourceRecordSets","kind":"server_error","count":1}'
  expect_r53_error "server_error fault" 500 InternalError "" POST "$rrset" "$create"
  fault '{"service":"route53","action":"ChangeResourceRecordSets","kind":"unauthorized","count":1}'
  expect_r53_error "unauthorized fault" 403 AccessDenied \
    "User: arn:aws:iam::111122223333:user/tandem-ci is not authorized to perform: route53:ChangeResourceRecordSets" \
    POST "$rrset" "$create"
  expect_r53_error "signed for $REGION instead of us-east-1" 403 SignatureDoesNotMatch \
    "Credential should be scoped to a valid region" GET "$rrset" "" "$REGION"
}

sfx=.r53 route53_checks >"$tmp/route53.log" 2>&1 &
r53_pid=$!

# ---- SNS and CloudWatch (beside the EC2 checks) ----------------------------------------------

# query_raw SERVICE FORM_PARAMS [REGION]: one SNS or CloudWatch Query call signed by curl; sets
# status and body.
query_raw() {
  body=$("$CURL" -sS --cacert "$tmp/ca/ca.pem" --aws-sigv4 "aws:amz:${3:-$REGION}:$1" \
    --user "$AKID:$SECRET" -w '\n%{http_code}' -d "$2" \
    -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' "$endpoint/" 2>&1)
  status=${body##*$'\n'}
  body=${body%$'\n'*}
}

# expect_query_error WHAT SERVICE STATUS TYPE CODE MESSAGE FORM_PARAMS: the <ErrorResponse> shape
# of SNS and CloudWatch, in the service's namespace.
expect_query_error() {
  local what=$1 service=$2 want_status=$3 type=$4 code=$5 message=$6 ns
  ns=http://sns.amazonaws.com/doc/2010-03-31/
  [[ $service == monitoring ]] && ns=http://monitoring.amazonaws.com/doc/2010-08-01/
  query_raw "$service" "$7"
  if [[ $status == "$want_status" &&
        $body == '<ErrorResponse xmlns="'"$ns"'"><Error><Type>'"$type</Type><Code>$code</Code><Message>"*"$message"*'</Message></Error><RequestId>'*'</RequestId></ErrorResponse>' ]]; then
    ok "$what: $status $code ($message)"
  else
    bad "$what: want $want_status $code '$message', got $status $body"
  fi
}

sns_cloudwatch_checks() {
  local got message_id
  aws_run -- sns publish --region "$REGION" --topic-arn "$TOPIC" --subject "tandem alpha: test" \
    --message '{"name": "heartbeat.node_down"}' --query MessageId
  message_id=$out
  got=$(state_get '[(m["topic_arn"], m["subject"], m["message"], m["message_id"]) for m in s["sns_messages"]]')
  if [[ $rc -eq 0 && $message_id =~ ^[0-9a-f-]{36}$ &&
        $got == "[('$TOPIC', 'tandem alpha: test', '{\"name\": \"heartbeat.node_down\"}', '$message_id')]" ]]; then
    ok "sns publish: MessageId $message_id, stored in sns_messages"
  else
    bad "sns publish: rc $rc, '$out', stored $got: $err"
  fi
  expect_error "sns publish to an unknown topic" NotFound "Topic does not exist" -- \
    sns publish --region "$REGION" --topic-arn "arn:aws:sns:$REGION:111122223333:nope" --message x

  aws_run -- cloudwatch put-metric-data --region "$REGION" --namespace Tandem --metric-data \
    'MetricName=MonitorCheckTime,Dimensions=[{Name=Cluster,Value=alpha},{Name=Node,Value=n1},{Name=Monitor,Value=web}],Value=12.5,Unit=Milliseconds'
  got=$(state_get '[(m["namespace"], m["metric_name"], m["dimensions"], m["value"], m["unit"]) for m in s["metrics"]]')
  if [[ $rc -eq 0 &&
        $got == "[('Tandem', 'MonitorCheckTime', {'Cluster': 'alpha', 'Node': 'n1', 'Monitor': 'web'}, 12.5, 'Milliseconds')]" ]]; then
    ok "cloudwatch put-metric-data: the datum is stored in metrics"
  else
    bad "cloudwatch put-metric-data: rc $rc, stored $got: $err"
  fi
  expect_error "cloudwatch put-metric-data to a reserved namespace" InvalidParameterValue \
    "The value AWS/EC2 for parameter Namespace is invalid." -- \
    cloudwatch put-metric-data --region "$REGION" --namespace AWS/EC2 --metric-name X --value 1

  # The same port serves every Query service: the signing scope picks one.
  local publish="Action=Publish&Version=2010-03-31&TopicArn=$TOPIC&Message=hello"
  expect_query_error "Publish to an unknown topic" sns 404 Sender NotFound "Topic does not exist" \
    "Action=Publish&Version=2010-03-31&TopicArn=arn:aws:sns:$REGION:111122223333:nope&Message=x"
  expect_query_error "Publish with a 100-character Subject" sns 400 Sender InvalidParameter \
    "Invalid parameter: Subject" "$publish&Subject=$(printf 's%.0s' {1..100})"
  expect_query_error "Publish to a FIFO topic without MessageGroupId" sns 400 Sender \
    InvalidParameter "Invalid parameter: The MessageGroupId parameter is required for FIFO topics" \
    "Action=Publish&Version=2010-03-31&TopicArn=arn:aws:sns:$REGION:111122223333:t.fifo&Message=x"
  expect_query_error "Publish to a topic of another region" sns 400 Sender InvalidParameter \
    "Invalid parameter: TopicArn" \
    "Action=Publish&Version=2010-03-31&TopicArn=arn:aws:sns:us-west-2:111122223333:t&Message=x"
  # (Not signed for ec2 here: the EC2 checks beside this install faults for every EC2 action.)
  expect_query_error "an EC2 action signed for sns goes to SNS" sns 400 Sender InvalidAction \
    "Could not find operation DescribeVpcs for version 2016-11-15" \
    "Action=DescribeVpcs&Version=2016-11-15"
  fault '{"service":"sns","action":"Publish","kind":"unauthorized","count":1}'
  expect_query_error "sns unauthorized fault" sns 403 Sender AuthorizationError \
    "User: arn:aws:iam::111122223333:user/tandem-ci is not authorized to perform: SNS:Publish on resource: $TOPIC" \
    "$publish"
  fault '{"service":"monitoring","action":"PutMetricData","kind":"throttle","count":1}'
  expect_query_error "cloudwatch throttle fault" monitoring 400 Sender Throttling "Rate exceeded" \
    "Action=PutMetricData&Version=2010-08-01&Namespace=T&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1"
  local many="Action=PutMetricData&Version=2010-08-01&Namespace=T" i
  for i in $(seq 1001); do
    many+="&MetricData.member.$i.MetricName=m&MetricData.member.$i.Value=$i"
  done
  expect_query_error "PutMetricData with 1001 datums" monitoring 400 Sender InvalidParameterValue \
    "The collection MetricData must not have a size greater than 1000." "$many"
  query_raw monitoring "Action=PutMetricData&Version=2010-08-01&Namespace=T" us-west-2
  [[ $status == 403 && $body == *"<Code>SignatureDoesNotMatch</Code>"*"scoped to a valid region"* ]] &&
    ok "PutMetricData signed for us-west-2: 403 SignatureDoesNotMatch" ||
    bad "PutMetricData signed for us-west-2: $status $body"
}

sfx=.query sns_cloudwatch_checks >"$tmp/query.log" 2>&1 &
query_pid=$!

# ---- EC2 route tables ----------------------------------------------------------------------

expect_out "describe-route-tables filter vpc-id" "$RTB_A1 $RTB_A2" -- \
  ec2 describe-route-tables --region "$REGION" --filters "Name=vpc-id,Values=$VPC_A" \
  --query 'RouteTables[].RouteTableId'
expect_out "describe-route-tables VIP route (ENI, instance, state, origin) and main association" \
  "True $ENI_A i-0aaaaaaaaaaaaaaa1 active CreateRoute" -- \
  ec2 describe-route-tables --region "$REGION" --route-table-ids "$RTB_A1" \
  --query "RouteTables[0].[Routes[?DestinationCidrBlock=='$VIP'] | [0].[NetworkInterfaceId,InstanceId,State,Origin], Associations[0].Main]"

control POST /_fake/reset_calls >/dev/null
expect_out "describe-route-tables --page-size 5 follows nextToken over 8 tables" 8 -- \
  ec2 describe-route-tables --region "$REGION" --page-size 5 --query 'length(RouteTables)' \
  --output json
got=$(calls_of ec2 DescribeRouteTables)
[[ $got == "200 200" ]] && ok "pagination took 2 pages" || bad "pagination: calls $got, want 2 pages"

ec2_raw "Action=DescribeRouteTables&Filter.1.Name=route.destination-cidr-block&Filter.1.Value.1=$VIP&Filter.2.Name=route-table-id&Filter.2.Value.1=rtb-0a%2A"
got=$(grep -o '<item><routeTableId>[^<]*' <<<"$body" | sed 's/.*>//' | tr '\n' ' ')
[[ $status == 200 && $got == "$RTB_A1 $RTB_A2 " ]] &&
  ok "Filter.N.Name/Value.M: route.destination-cidr-block and a route-table-id wildcard" ||
  bad "DescribeRouteTables filters: $status $body"

aws_run -- ec2 replace-route --region "$REGION" --route-table-id "$RTB_A1" \
  --destination-cidr-block "$VIP" --network-interface-id "$ENI_B"
[[ $rc -eq 0 ]] && ok "replace-route $RTB_A1 $VIP -> $ENI_B" || bad "replace-route: rc $rc: $err"
expect_out "describe after replace-route: $RTB_A1 -> $ENI_B, $RTB_A2 unchanged" "$ENI_B $ENI_A" -- \
  ec2 describe-route-tables --region "$REGION" --route-table-ids "$RTB_A1" "$RTB_A2" \
  --query "RouteTables[].Routes[?DestinationCidrBlock=='$VIP'].NetworkInterfaceId[]"

vip_route() {  # vip_route RTB: the ENI of the VIP route in RTB, from a raw DescribeRouteTables
  ec2_raw "Action=DescribeRouteTables&RouteTableId.1=$1"
  "$PY" -c '
import sys, xml.etree.ElementTree as ET
ns = {"e": "http://ec2.amazonaws.com/doc/2016-11-15/"}
root = ET.fromstring(sys.stdin.read())
for r in root.iterfind(".//e:routeSet/e:item", ns):
    if r.findtext("e:destinationCidrBlock", namespaces=ns) == sys.argv[1]:
        print(r.findtext("e:networkInterfaceId", namespaces=ns))' "$VIP" <<<"$body"
}

# A route moved behind our back through the control API is what the next describe shows.
patch=$(control GET /_fake/state | "$PY" -c '
import json, sys
tables = json.load(sys.stdin)["route_tables"]
for t in tables:
    for r in t["routes"]:
        if r["destination_cidr"] == sys.argv[1] and t["route_table_id"] == sys.argv[2]:
            r["network_interface_id"] = sys.argv[3]
print(json.dumps({"route_tables": tables}))' "$VIP" "$RTB_A1" "$ENI_A")
control POST /_fake/state "$patch" >/dev/null || bad "POST /_fake/state"
got=$(vip_route "$RTB_A1")
[[ $got == "$ENI_A" ]] && ok "POST /_fake/state moved the route back to $ENI_A" ||
  bad "route after POST /_fake/state: '$got'"

expect_error "replace-route unknown table" InvalidRouteTableID.NotFound \
  "The routeTable ID 'rtb-0000000000000dead' does not exist" -- \
  ec2 replace-route --region "$REGION" --route-table-id rtb-0000000000000dead \
  --destination-cidr-block "$VIP" --network-interface-id "$ENI_B"
fault '{"service":"ec2","action":"ReplaceRoute","kind":"unauthorized","count":1}'
expect_error "replace-route with an unauthorized fault" UnauthorizedOperation \
  "You are not authorized to perform this operation. Encoded authorization failure message: " -- \
  ec2 replace-route --region "$REGION" --route-table-id "$RTB_A1" \
  --destination-cidr-block "$VIP" --network-interface-id "$ENI_B"
got=$(vip_route "$RTB_A1")
[[ $got == "$ENI_A" ]] && ok "the refused replace-route changed nothing" || bad "route is '$got'"

replace="Action=ReplaceRoute&RouteTableId=$RTB_A1&NetworkInterfaceId=$ENI_B"
expect_ec2_error "ReplaceRoute of a missing destination" 400 InvalidRoute.NotFound \
  "There is no route defined for '10.0.200.1/32' in the route table. Use CreateRoute instead." \
  "$replace&DestinationCidrBlock=10.0.200.1/32"
expect_ec2_error "ReplaceRoute to an unknown ENI" 400 InvalidNetworkInterfaceID.NotFound \
  "The networkInterface ID 'eni-0000000000000dead' does not exist" \
  "Action=ReplaceRoute&RouteTableId=$RTB_A1&NetworkInterfaceId=eni-0000000000000dead&DestinationCidrBlock=$VIP"
expect_ec2_error "ReplaceRoute DryRun" 412 DryRunOperation \
  "Request would have succeeded, but DryRun flag is set." "$replace&DestinationCidrBlock=$VIP&DryRun=true"
expect_ec2_error "unknown action" 400 InvalidAction \
  "The action DescribeInstances is not valid for this web service." "Action=DescribeInstances"

# ---- DescribeVpcs ----------------------------------------------------------------------------

expect_out "describe-vpcs" "10.0.0.0/16 10.0.0.0/16 100.64.0.0/16" -- \
  ec2 describe-vpcs --region "$REGION" --vpc-ids "$VPC_A" \
  --query 'Vpcs[0].[CidrBlock, CidrBlockAssociationSet[].CidrBlock]'
expect_ec2_error "DescribeVpcs unknown" 400 InvalidVpcID.NotFound \
  "The vpc ID 'vpc-0000000000000dead' does not exist" "Action=DescribeVpcs&VpcId.1=vpc-0000000000000dead"

# ---- Elastic IP ------------------------------------------------------------------------------

expect_out "associate-address to $ENI_A returns an association id" "True" -- \
  ec2 associate-address --region "$REGION" --allocation-id "$ALLOC" \
  --network-interface-id "$ENI_A" --query "starts_with(AssociationId, 'eipassoc-')"
expect_out "describe-addresses shows the association" "$ENI_A 10.0.1.10 i-0aaaaaaaaaaaaaaa1" -- \
  ec2 describe-addresses --region "$REGION" --allocation-ids "$ALLOC" \
  --query 'Addresses[0].[NetworkInterfaceId,PrivateIpAddress,InstanceId]'
expect_error "associate-address elsewhere without --allow-reassociation" \
  Resource.AlreadyAssociated "resource $ALLOC is already associated with associate-id eipassoc-" -- \
  ec2 associate-address --region "$REGION" --allocation-id "$ALLOC" --network-interface-id "$ENI_B"
aws_run -- ec2 associate-address --region "$REGION" --allocation-id "$ALLOC" \
  --network-interface-id "$ENI_B" --private-ip-address 10.0.2.11 --allow-reassociation
[[ $rc -eq 0 ]] && ok "associate-address --allow-reassociation to $ENI_B 10.0.2.11" ||
  bad "associate-address --allow-reassociation: $err"
aws_run -- ec2 describe-addresses --region "$REGION" --public-ips 203.0.113.10 \
  --query 'Addresses[0].[AssociationId,NetworkInterfaceId,PrivateIpAddress]'
read -r assoc_id assoc_eni assoc_ip <<<"$out"
[[ $assoc_eni == "$ENI_B" && $assoc_ip == 10.0.2.11 && $assoc_id == eipassoc-* ]] &&
  ok "describe-addresses --public-ips shows $ENI_B 10.0.2.11" || bad "describe-addresses: '$out' $err"
aws_run -- ec2 disassociate-address --region "$REGION" --association-id "$assoc_id"
[[ $rc -eq 0 ]] && ok "disassociate-address $assoc_id" || bad "disassociate-address: $err"
ec2_raw "Action=DescribeAddresses&AllocationId.1=$ALLOC"
[[ $status == 200 && $body == *"<allocationId>$ALLOC</allocationId>"* &&
   $body != *"<associationId>"* && $body != *"<networkInterfaceId>"* ]] &&
  ok "DescribeAddresses after disassociate has no association" || bad "after disassociate: $body"
expect_ec2_error "DisassociateAddress again" 400 InvalidAssociationID.NotFound \
  "The association ID '$assoc_id' does not exist" "Action=DisassociateAddress&AssociationId=$assoc_id"
expect_ec2_error "DescribeAddresses unknown allocation" 400 InvalidAllocationID.NotFound \
  "The allocation ID 'eipalloc-0000000000000dead' does not exist" \
  "Action=DescribeAddresses&AllocationId.1=eipalloc-0000000000000dead"

# ---- Availability zones, retries, faults ---------------------------------------------------

expect_out "describe-availability-zones (state, messageSet)" \
  "${REGION}a available None ${REGION}b impaired Elevated API error rates ${REGION}c available None" -- \
  ec2 describe-availability-zones --region "$REGION" \
  --query 'AvailabilityZones[].[ZoneName,State,Messages[0].Message]'

control POST /_fake/reset_calls >/dev/null
fault '{"service":"ec2","action":"DescribeVpcs","kind":"throttle","count":1}'
fault '{"service":"ec2","action":"DescribeVpcs","kind":"server_error","count":1}'
expect_out "describe-vpcs retried through 503 RequestLimitExceeded and 500" "$VPC_A" \
  AWS_MAX_ATTEMPTS=3 -- ec2 describe-vpcs --region "$REGION" --vpc-ids "$VPC_A" --query 'Vpcs[0].VpcId'
got=$(calls_of ec2 DescribeVpcs)
[[ $got == "503 500 200" ]] && ok "calls log: $got" || bad "calls log: '$got', want '503 500 200'"
fault '{"service":"ec2","action":"*","kind":"throttle","count":1}'
expect_error "throttle without retries" RequestLimitExceeded "Request limit exceeded." -- \
  ec2 describe-vpcs --region "$REGION"

fault '{"service":"ec2","action":"DescribeVpcs","kind":"delay","delay_ms":400,"count":1}'
start=$(date +%s%N)
ec2_raw "Action=DescribeVpcs"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[[ $status == 200 && $body == *"<vpcId>$VPC_A</vpcId>"* ]] && ((elapsed_ms >= 400)) &&
  ok "delay fault: answered normally after ${elapsed_ms} ms (>= 400)" ||
  bad "delay fault: ${elapsed_ms} ms: $status $body"
fault '{"service":"ec2","action":"DescribeVpcs","kind":"drop","count":1}'
ec2_raw "Action=DescribeVpcs"
[[ $body == *"Empty reply from server"* ]] && ok "drop fault: connection closed without an answer" ||
  bad "drop fault: $status $body"
ec2_raw "Action=DescribeVpcs"
[[ $status == 200 ]] && ok "the drop fault was used up by one request" || bad "after the drop fault: $body"

# ---- Signatures and credentials ------------------------------------------------------------

expect_error "wrong secret key" SignatureDoesNotMatch \
  "The request signature we calculated does not match the signature you provided" \
  AWS_SECRET_ACCESS_KEY=not-the-secret -- ec2 describe-vpcs --region "$REGION"
expect_error "unknown access key" AuthFailure \
  "AWS was not able to validate the provided access credentials" \
  AWS_ACCESS_KEY_ID=AKIDUNKNOWN000000000 -- ec2 describe-vpcs --region "$REGION"
expect_out "session credentials with a signed X-Amz-Security-Token" "$VPC_A" \
  AWS_ACCESS_KEY_ID="$SESSION_AKID" AWS_SECRET_ACCESS_KEY="$SESSION_SECRET" \
  AWS_SESSION_TOKEN="$SESSION_TOKEN" -- \
  ec2 describe-vpcs --region "$REGION" --vpc-ids "$VPC_A" --query 'Vpcs[0].VpcId'
expect_error "session key without its token" AuthFailure \
  "AWS was not able to validate the provided access credentials" \
  AWS_ACCESS_KEY_ID="$SESSION_AKID" AWS_SECRET_ACCESS_KEY="$SESSION_SECRET" -- \
  ec2 describe-vpcs --region "$REGION"
expect_ec2_error "signed for the wrong region" 403 SignatureDoesNotMatch \
  "Credential should be scoped to a valid region, not 'us-west-2'" "Action=DescribeVpcs" us-west-2

body=$("$CURL" -sS --cacert "$tmp/ca/ca.pem" --aws-sigv4 "aws:amz:$REGION:ec2" \
  --user "$AKID:$SECRET" "$endpoint/?Action=DescribeVpcs&Version=2016-11-15" 2>&1)
[[ $body == *'<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>'*"<vpcId>$VPC_A</vpcId>"* ]] &&
  ok "GET /?Action=DescribeVpcs signed by curl" || bad "GET /?Action=DescribeVpcs: $body"

# A request signed 10 minutes ago (botocore's signer at a pinned time, sent as is).
expired=$("$PY" - "$endpoint" "$tmp/ca/ca.pem" "$AKID" "$SECRET" "$REGION" <<'EOF'
import datetime, http.client, ssl, sys, urllib.parse
from botocore.auth import SigV4Auth, SIGV4_TIMESTAMP
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
endpoint, ca, akid, secret, region = sys.argv[1:]
class Past(SigV4Auth):
    def add_auth(self, request):
        when = datetime.datetime.utcnow() - datetime.timedelta(minutes=10)
        request.context["timestamp"] = when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        cr = self.canonical_request(request)
        self._inject_signature_to_request(request, self.signature(self.string_to_sign(request, cr), request))
body = b"Action=DescribeVpcs&Version=2016-11-15"
req = AWSRequest("POST", endpoint + "/", data=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
Past(Credentials(akid, secret), "ec2", region).add_auth(req)
u = urllib.parse.urlsplit(endpoint)
conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca))
conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
r = conn.getresponse()
print(r.status, r.read().decode())
EOF
)
[[ $expired == "400 "*"<Response><Errors><Error><Code>RequestExpired</Code>"*"<RequestID>"* ]] &&
  ok "request signed 10 minutes ago: 400 RequestExpired in the EC2 error shape" ||
  bad "request signed 10 minutes ago: $expired"

# ---- IMDSv2 --------------------------------------------------------------------------------

imds_status() {  # imds_status METHOD PATH [curl args...]: prints the HTTP status
  local method=$1 path=$2
  shift 2
  "$CURL" -s -o "$tmp/imds.body" -w '%{http_code}' -X "$method" "$@" "$imds$path"
}
ttl=(-H 'X-aws-ec2-metadata-token-ttl-seconds: 60')
[[ $(imds_status PUT /latest/api/token) == 400 ]] && ok "IMDS token PUT without TTL: 400" ||
  bad "IMDS token PUT without TTL is not 400"
[[ $(imds_status PUT /latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 21601') == 400 ]] &&
  ok "IMDS token PUT with TTL 21601: 400" || bad "IMDS token PUT with TTL 21601 is not 400"
[[ $(imds_status PUT /latest/api/token "${ttl[@]}" -H 'X-Forwarded-For: 192.0.2.1') == 403 ]] &&
  ok "IMDS token PUT with X-Forwarded-For: 403" || bad "IMDS X-Forwarded-For is not 403"
[[ $(imds_status GET /latest/meta-data/instance-id) == 401 ]] &&
  grep -q '<title>401 - Unauthorized</title>' "$tmp/imds.body" &&
  ok "IMDS GET without token: 401 with the HTML body" || bad "IMDS GET without token"
token=$("$CURL" -sS -X PUT "${ttl[@]}" "$imds/latest/api/token")
tok=(-H "X-aws-ec2-metadata-token: $token")
for pair in "meta-data/instance-id=i-0aaaaaaaaaaaaaaa1" "meta-data/placement/region=$REGION" \
            "meta-data/placement/availability-zone=${REGION}a" \
            "meta-data/iam/security-credentials/=tandem-ha-node" \
            "meta-data/network/interfaces/macs/0a:00:00:00:00:01/interface-id=$ENI_A"; do
  path=${pair%%=*}
  want=${pair#*=}
  got=$("$CURL" -sS "${tok[@]}" "$imds/latest/$path")
  [[ $got == "$want" ]] && ok "IMDS $path = $want" || bad "IMDS $path: '$got', want '$want'"
done
control POST /_fake/imds/expire_tokens >/dev/null
[[ $(imds_status GET /latest/meta-data/instance-id "${tok[@]}") == 401 ]] &&
  ok "IMDS token refused after /_fake/imds/expire_tokens" || bad "IMDS token still valid after expiry"

# The CLI's own instance-metadata credential provider: no keys anywhere but IMDS.
control POST /_fake/reset_calls >/dev/null
rc=0
env -i "${base_env[@]}" AWS_EC2_METADATA_SERVICE_ENDPOINT="$imds/" "$AWS" --endpoint-url "$endpoint" \
  --output text ec2 describe-availability-zones --region "$REGION" \
  --query 'length(AvailabilityZones)' >"$tmp/out" 2>"$tmp/err" || rc=$?
imds_key=$(state_get 's["imds"]["credentials"]["access_key"]')
used=$(control GET /_fake/calls | "$PY" -c '
import json, sys
print(" ".join(c["action"] + "=" + c.get("access_key", "-") + ":" + str(c["status"])
               for c in json.load(sys.stdin) if c["service"] == "ec2"))')
[[ $rc -eq 0 && $(<"$tmp/out") == 3 && $used == "DescribeAvailabilityZones=$imds_key:200" ]] &&
  ok "aws with IMDS role credentials ($imds_key, session token signed)" ||
  bad "aws with IMDS role credentials: rc $rc, out '$(<"$tmp/out")', calls '$used': $(<"$tmp/err")"
got=$(calls_of imds api/token)
[[ $got == 200* ]] && ok "the CLI fetched an IMDSv2 token first" || bad "IMDS token calls: '$got'"

# ---- HTTP/1.1 keep-alive -------------------------------------------------------------------

"$CURL" -sS -v --cacert "$tmp/ca/ca.pem" "$endpoint/_fake/faults" "$endpoint/_fake/faults" \
  -o /dev/null -o /dev/null 2>"$tmp/curl.log"
grep -qi 're-using existing connection' "$tmp/curl.log" &&
  ok "two requests over one kept-alive connection" || bad "keep-alive: connection not reused"

# ---- the fake's own log ----------------------------------------------------------------------

grep -q 'POST ec2:ReplaceRoute -> 200' "$tmp/fake.log" && ok "fake logs one line per request" ||
  bad "fake log lacks 'POST ec2:ReplaceRoute -> 200'"

kill "$fake_pid"
wait "$fake_pid"
fake_rc=$?
fake_pid=
[[ $fake_rc -eq 0 ]] && ok "fake_aws.py exits 0 on SIGTERM" || bad "fake_aws.py exited $fake_rc on SIGTERM"

wait "$r53_pid"
r53_pid=
wait "$query_pid"
query_pid=
echo "--- Route 53 (run beside the EC2 checks) ---"
cat "$tmp/route53.log"
echo "--- SNS and CloudWatch (run beside the EC2 checks) ---"
cat "$tmp/query.log"
passed=$(cat "$tmp"/results.* | grep -c '^ok')
failed=$(cat "$tmp"/results.* | grep -c '^FAIL')
echo
if ((failed > 0)); then
  echo "--- fake_aws.py log (last 40 lines) ---"
  tail -n 40 "$tmp/fake.log"
fi
echo "awscli_conformance: $passed passed, $failed failed"
((failed == 0))
