// SPDX-License-Identifier: Apache-2.0
// The cloud JSON readers on the sample bodies of ../shared/cloud/API_SHAPES.md sections 7-9
// (copied verbatim), on each error shape, and on bodies that must be refused: not JSON, wrong
// types, missing members, numbers out of range, bad timestamps, oversize bodies. The writers'
// output is read back with nlohmann::json and compared with the documented request bodies.
#include "control/cloud/cloud_json.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tandem::ctl::cloud {
namespace {

using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

// Runs f, which must throw cloud_json_error, and returns its message.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const cloud_json_error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw something other than cloud_json_error: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no cloud_json_error thrown";
  return {};
}

sys_clock::time_point at(long long epoch_seconds) {
  return sys_clock::time_point(std::chrono::seconds(epoch_seconds));
}

// ---- the samples of API_SHAPES.md ----

constexpr std::string_view imds_role_sample = R"({
  "Code" : "Success",
  "LastUpdated" : "2012-04-26T16:39:16Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAIOSFODNN7EXAMPLE",
  "SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  "Token" : "token",
  "Expiration" : "2017-05-17T15:09:54Z"
})";

constexpr std::string_view gce_token_sample = R"({
  "access_token": "XXX",
  "expires_in": 1967,
  "token_type": "Bearer"
})";

constexpr std::string_view gcp_change_request_sample = R"({
  "kind": "dns#change",
  "additions": [{"kind": "dns#resourceRecordSet", "name": "service.example.com.", "type": "A",
                 "ttl": 3600, "rrdatas": ["127.0.0.1", "127.0.0.2"]}]
})";

constexpr std::string_view gcp_change_response_sample = R"({ "kind": "dns#change",
  "additions": [{ "kind": "dns#resourceRecordSet", "name": "service.example.com.",
                  "rrdatas": ["127.0.0.1", "127.0.0.2"], "type": "A", "ttl": 3600 }],
  "startTime": "2018-04-26T15:02:17.541Z", "id": "999", "status": "pending" })";

constexpr std::string_view gcp_error_sample =
    R"({"error":{"code":409,"message":"…","errors":[{"reason":"alreadyExists","domain":"global"}]}})";

constexpr std::string_view gcp_rrsets_sample =
    R"({"kind":"dns#resourceRecordSetsListResponse","rrsets":[{"name":"example.com.","type":"A","ttl":300,"rrdatas":["192.0.2.1"]}]})";

constexpr std::string_view azure_token_sample = R"({
  "access_token": "eyJ0eXAi...",
  "refresh_token": "",
  "expires_in": "3599",
  "expires_on": "1506484173",
  "not_before": "1506480273",
  "resource": "https://management.azure.com/",
  "token_type": "Bearer"
})";

constexpr std::string_view azure_put_request_sample =
    R"({ "properties": { "metadata": { "key1": "value1" }, "TTL": 3600,
                  "ARecords": [ { "ipv4Address": "127.0.0.1" } ] } })";

constexpr std::string_view azure_record_set_sample =
    R"({ "id": "/subscriptions/subid/resourceGroups/rg1/providers/Microsoft.Network/dnsZones/zone1/A/record1",
  "etag": "00000000-0000-0000-0000-000000000000",
  "name": "record1",
  "type": "Microsoft.Network/dnsZones/A",
  "properties": { "metadata": { "key1": "value1" }, "TTL": 3600, "fqdn": "record1.zone1",
                  "ARecords": [ { "ipv4Address": "127.0.0.1" } ] } })";

// The IMDS error body (an HTML page, API_SHAPES.md section 7).
constexpr std::string_view imds_html_error =
    "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>401 - "
    "Unauthorized</title></head><body><h1>401 - Unauthorized</h1></body></html>\n";

constexpr std::string_view arm_error_sample =
    R"({"error":{"code":"PreconditionFailed","message":"The condition '00000000-0000-0000-0000-000000000001' in the If-Match header was not satisfied. The current was '00000000-0000-0000-0000-000000000000'."}})";

constexpr std::string_view oauth_error_sample =
    R"({"error":"invalid_request","error_description":"Required metadata header not specified"})";

// The sample with one member replaced (or removed, with value ""), as text.
std::string imds_with(const std::string& key, const std::string& value) {
  json doc = json::parse(imds_role_sample);
  if (value.empty()) {
    doc.erase(key);
  } else {
    doc[key] = json::parse(value);
  }
  return doc.dump();
}

// ---- IMDS role credentials ----

TEST(imds_role_credentials, sample) {
  const imds_role_credentials c = parse_imds_role_credentials(imds_role_sample);
  EXPECT_EQ(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
  EXPECT_EQ(c.token, "token");
  EXPECT_EQ(c.expiration, at(1'495'033'794));  // date -u -d 2017-05-17T15:09:54Z +%s
}

TEST(imds_role_credentials, timestamps) {
  auto expiry = [](const std::string& t) {
    return parse_imds_role_credentials(imds_with("Expiration", json(t).dump())).expiration;
  };
  EXPECT_EQ(expiry("2017-05-17T15:09:54.999Z"), at(1'495'033'794));  // the fraction is dropped
  EXPECT_EQ(expiry("2017-05-17T15:09:54.1234567890Z"), at(1'495'033'794));
  EXPECT_EQ(expiry("2000-02-29T00:00:00Z"), at(951'782'400));    // a leap day
  EXPECT_EQ(expiry("2016-12-31T23:59:60Z"), at(1'483'228'800));  // a leap second
  EXPECT_EQ(expiry("2017-05-17t15:09:54z"), at(1'495'033'794));  // RFC 3339 allows lower case

  for (const std::string bad :
       {"2017-05-17 15:09:54",   "2017-05-17T15:09:54",   "2017-05-17T15:09:54+00:00",
        "2017-05-17T15:09:54.Z", "2017-05-17T15:09:54Z ", " 2017-05-17T15:09:54Z",
        "2017-05-17T15:09Z",     "2017-5-17T15:09:54Z",   "2017-13-01T00:00:00Z",
        "2017-00-01T00:00:00Z",  "2017-02-30T00:00:00Z",  "2100-02-29T00:00:00Z",
        "2017-04-31T00:00:00Z",  "2017-05-17T24:00:00Z",  "2017-05-17T15:60:00Z",
        "2017-05-17T15:09:61Z",
        "9999-12-31T23:59:59Z",  // after what system_clock can count
        "+2017-05-17T15:09:54Z", "May 17 2017",           ""}) {
    EXPECT_THAT(error_of([&] { expiry(bad); }),
                HasSubstr("IMDS role credentials: Expiration " + bad + " is not a UTC time"))
        << bad;
  }
}

TEST(imds_role_credentials, refused) {
  EXPECT_EQ(
      error_of([] {
        parse_imds_role_credentials(
            R"({"Code": "AssumeRoleUnauthorizedAccess", "Message": "EC2 cannot assume the role"})");
      }),
      "IMDS role credentials: Code AssumeRoleUnauthorizedAccess: EC2 cannot assume the role");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("SecretAccessKey", "")); }),
            "IMDS role credentials: no SecretAccessKey");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("Code", "")); }),
            "IMDS role credentials: no Code");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("Code", "true")); }),
            "IMDS role credentials: Code is not a string");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("AccessKeyId", "12")); }),
            "IMDS role credentials: AccessKeyId is not a string");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("Token", R"("")")); }),
            "IMDS role credentials: Token is empty");
  // Credentials go into HTTP headers as they are: a line break would start a new header.
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("Token", R"("a\r\nX: y")")); }),
            "IMDS role credentials: Token has a byte outside visible ASCII");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_with("Expiration", "1495033794")); }),
            "IMDS role credentials: Expiration is not a string");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(imds_html_error); }),
            "IMDS role credentials: not a JSON object");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials("[]"); }),
            "IMDS role credentials: not a JSON object");
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(""); }),
            "IMDS role credentials: not a JSON object");
  // Trailing garbage after the object.
  EXPECT_EQ(error_of([] { parse_imds_role_credentials(std::string(imds_role_sample) + "}"); }),
            "IMDS role credentials: not a JSON object");
}

// ---- OAuth tokens ----

TEST(gce_token, sample) {
  const sys_clock::time_point now = at(1'700'000'000);
  const access_token t = parse_gce_token(gce_token_sample, now);
  EXPECT_EQ(t.token, "XXX");
  EXPECT_EQ(t.expires, now + 1967s);
}

TEST(gce_token, accepted_variants) {
  const sys_clock::time_point now = at(1'700'000'000);
  // token_type in any case, or absent; a whole number written as a float; unknown members.
  EXPECT_EQ(parse_gce_token(R"({"access_token":"a","expires_in":3599,"token_type":"bearer"})", now)
                .expires,
            now + 3599s);
  EXPECT_EQ(parse_gce_token(R"({"access_token":"a","expires_in":3.6e3,"x":[{}]})", now).expires,
            now + 3600s);
  EXPECT_EQ(parse_gce_token(R"({"access_token":"a","expires_in":31535999})", now).expires,
            now + 31'535'999s);
}

TEST(gce_token, refused) {
  const sys_clock::time_point now = at(1'700'000'000);
  auto err = [&](std::string_view body) { return error_of([&] { parse_gce_token(body, now); }); };
  EXPECT_EQ(err(R"({"expires_in":1967,"token_type":"Bearer"})"), "GCE token: no access_token");
  EXPECT_EQ(err(R"({"access_token":"XXX","token_type":"Bearer"})"), "GCE token: no expires_in");
  EXPECT_EQ(err(R"({"access_token":7,"expires_in":1967})"),
            "GCE token: access_token is not a string");
  EXPECT_EQ(err(R"({"access_token":"","expires_in":1967})"), "GCE token: access_token is empty");
  EXPECT_EQ(err(R"({"access_token":"a b","expires_in":1967})"),
            "GCE token: access_token has a byte outside visible ASCII");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":"1967"})"),
            "GCE token: expires_in is not a number");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":0})"),
            "GCE token: expires_in 0 is out of range 1..31535999");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":-5})"),
            "GCE token: expires_in -5 is out of range 1..31535999");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":31536000})"),
            "GCE token: expires_in 31536000 is out of range 1..31535999");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":1967.5})"),
            "GCE token: expires_in is not a whole number");
  EXPECT_THAT(err(R"({"access_token":"XXX","expires_in":18446744073709551616})"),
              StartsWith("GCE token: expires_in "));
  EXPECT_THAT(err(R"({"access_token":"XXX","expires_in":99999999999999999999999})"),
              StartsWith("GCE token: expires_in "));
  // A number beyond double is not JSON to nlohmann.
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":1e400})"), "GCE token: not a JSON object");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":1967,"token_type":"Mac"})"),
            "GCE token: token_type Mac is not Bearer");
  EXPECT_EQ(err(R"({"access_token":"XXX","expires_in":1967,"token_type":null})"),
            "GCE token: token_type is not a string");
  EXPECT_EQ(err(oauth_error_sample),
            "GCE token: an error answer: invalid_request: Required metadata header not specified");
  EXPECT_EQ(err("Forbidden"), "GCE token: not a JSON object");
}

TEST(azure_token, sample) {
  // Read between not_before and expires_on: expires_on wins over now + expires_in.
  const sys_clock::time_point now = at(1'506'480'283);
  const access_token t = parse_azure_token(azure_token_sample, now);
  EXPECT_EQ(t.token, "eyJ0eXAi...");
  EXPECT_EQ(t.expires, at(1'506'484'173));
}

TEST(azure_token, variants) {
  const sys_clock::time_point now = at(1'506'480'283);
  EXPECT_EQ(parse_azure_token(R"({"access_token":"a","expires_in":"3599"})", now).expires,
            now + 3599s);
  EXPECT_EQ(parse_azure_token(R"({"access_token":"a","expires_in":3599})", now).expires,
            now + 3599s);
  EXPECT_EQ(parse_azure_token(R"({"access_token":"a","expires_on":1506484173})", now).expires,
            at(1'506'484'173));
}

TEST(azure_token, refused) {
  const sys_clock::time_point now = at(1'506'480'283);
  auto err = [&](std::string_view body) { return error_of([&] { parse_azure_token(body, now); }); };
  EXPECT_EQ(err(R"({"access_token":"a"})"), "Azure token: no expires_in");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":"3599s"})"),
            "Azure token: expires_in 3599s is not a number");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":" 3599"})"),
            "Azure token: expires_in  3599 is not a number");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":"-1"})"),
            "Azure token: expires_in -1 is not a number");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":"+3599"})"),
            "Azure token: expires_in +3599 is not a number");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":""})"),
            "Azure token: expires_in  is not a number");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":"0"})"),
            "Azure token: expires_in 0 is out of range 1..31535999");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":"99999999999999999999999"})"),
            "Azure token: expires_in 99999999999999999999999 is out of range");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":true})"),
            "Azure token: expires_in is not a number");
  // Not after now, or a year or more away.
  EXPECT_EQ(err(R"({"access_token":"a","expires_on":"1506480283"})"),
            "Azure token: expires_on 1506480283 is not within a year from now (1506480283)");
  EXPECT_EQ(err(R"({"access_token":"a","expires_on":"1538016283"})"),
            "Azure token: expires_on 1538016283 is not within a year from now (1506480283)");
  EXPECT_EQ(err(R"({"access_token":"a","expires_on":"09/14/2017 00:00:00 PM +00:00"})"),
            "Azure token: expires_on 09/14/2017 00:00:00 PM +00:00 is not a number");
  EXPECT_EQ(err(R"({"access_token":"a","expires_on":"253402300800"})"),
            "Azure token: expires_on 253402300800 is out of range 0..253402300799");
  EXPECT_EQ(err(R"({"access_token":"a","expires_in":"3599","token_type":"Basic"})"),
            "Azure token: token_type Basic is not Bearer");
  EXPECT_EQ(err(oauth_error_sample),
            "Azure token: an error answer: invalid_request: Required metadata header not "
            "specified");
}

// ---- Google Cloud DNS ----

TEST(gcp_change, sample) {
  const gcp_change c = parse_gcp_change(gcp_change_response_sample);
  EXPECT_EQ(c.id, "999");
  EXPECT_EQ(c.status, "pending");
  EXPECT_EQ(parse_gcp_change(R"({"id":"1","status":"done"})").status, "done");
}

TEST(gcp_change, refused) {
  auto err = [](std::string_view body) { return error_of([&] { parse_gcp_change(body); }); };
  EXPECT_EQ(err(gcp_change_request_sample), "Cloud DNS change: no id");
  EXPECT_EQ(err(R"({"id":"999"})"), "Cloud DNS change: no status");
  EXPECT_EQ(err(R"({"id":999,"status":"done"})"), "Cloud DNS change: id is not a string");
  EXPECT_EQ(err(R"({"id":"","status":"done"})"), "Cloud DNS change: id is empty");
  // The id goes into the URL of changes.get.
  EXPECT_EQ(err(R"({"id":"../999","status":"done"})"),
            "Cloud DNS change: id ../999 is not a change id");
  EXPECT_EQ(err(R"({"kind":"dns#managedZone","id":"1","status":"done"})"),
            "Cloud DNS change: kind is dns#managedZone, not dns#change");
  EXPECT_EQ(err(gcp_error_sample),
            "Cloud DNS change: an error answer: alreadyExists: ???");  // "…" is not ASCII
  EXPECT_EQ(err(gcp_rrsets_sample),
            "Cloud DNS change: kind is dns#resourceRecordSetsListResponse, not dns#change");
}

TEST(gcp_record_sets, sample) {
  const gcp_record_sets r = parse_gcp_record_sets(gcp_rrsets_sample);
  ASSERT_EQ(r.sets.size(), 1u);
  EXPECT_EQ(r.sets[0].name, "example.com.");  // the trailing dot stays
  EXPECT_EQ(r.sets[0].type, "A");
  EXPECT_EQ(r.sets[0].ttl, 300);
  EXPECT_THAT(r.sets[0].rrdatas, ElementsAre("192.0.2.1"));
  EXPECT_EQ(r.next_page_token, "");
}

TEST(gcp_record_sets, pages_and_empty_lists) {
  const gcp_record_sets r = parse_gcp_record_sets(
      R"({"rrsets":[{"kind":"dns#resourceRecordSet","name":"a.example.com.","type":"AAAA","ttl":0,"rrdatas":["2001:db8::1","2001:db8::2"],"signatureRrdatas":[]},{"name":"b.example.com.","type":"A","routingPolicy":{}}],"nextPageToken":"CgZw"})");
  ASSERT_EQ(r.sets.size(), 2u);
  EXPECT_EQ(r.sets[0].ttl, 0);
  EXPECT_THAT(r.sets[0].rrdatas, ElementsAre("2001:db8::1", "2001:db8::2"));
  EXPECT_THAT(r.sets[1].rrdatas, IsEmpty());
  EXPECT_EQ(r.next_page_token, "CgZw");
  EXPECT_THAT(parse_gcp_record_sets(R"({"kind":"dns#resourceRecordSetsListResponse"})").sets,
              IsEmpty());
  EXPECT_THAT(parse_gcp_record_sets(R"({"rrsets":[]})").sets, IsEmpty());
}

TEST(gcp_record_sets, refused) {
  auto err = [](std::string_view body) { return error_of([&] { parse_gcp_record_sets(body); }); };
  auto one = [&](std::string_view set) {
    return err(R"({"rrsets":[{"name":"x.","type":"A","ttl":300,"rrdatas":["192.0.2.1"]},)" +
               std::string(set) + "]}");
  };
  EXPECT_EQ(err(R"({"rrsets":{}})"), "Cloud DNS record sets: rrsets is not an array");
  EXPECT_EQ(one("7"), "Cloud DNS record sets: rrsets[1] is not an object");
  EXPECT_EQ(one(R"({"type":"A"})"), "Cloud DNS record sets: no rrsets[1].name");
  EXPECT_EQ(one(R"({"name":"x."})"), "Cloud DNS record sets: no rrsets[1].type");
  EXPECT_EQ(one(R"({"name":"x.","type":"A","ttl":"300"})"),
            "Cloud DNS record sets: rrsets[1].ttl is not a number");
  EXPECT_EQ(one(R"({"name":"x.","type":"A","ttl":-1})"),
            "Cloud DNS record sets: rrsets[1].ttl -1 is out of range 0..2147483647");
  EXPECT_EQ(one(R"({"name":"x.","type":"A","ttl":2147483648})"),
            "Cloud DNS record sets: rrsets[1].ttl 2147483648 is out of range 0..2147483647");
  EXPECT_EQ(one(R"({"name":"x.","type":"A","ttl":300.5})"),
            "Cloud DNS record sets: rrsets[1].ttl is not a whole number");
  EXPECT_EQ(one(R"({"name":"x.","type":"A","rrdatas":"192.0.2.1"})"),
            "Cloud DNS record sets: rrsets[1].rrdatas is not an array");
  EXPECT_EQ(one(R"({"name":"x.","type":"A","rrdatas":["192.0.2.1",1]})"),
            "Cloud DNS record sets: rrsets[1].rrdatas[1] is not a string");
  EXPECT_EQ(one(R"({"kind":"dns#change","name":"x.","type":"A"})"),
            "Cloud DNS record sets: rrsets[1].kind is dns#change, not dns#resourceRecordSet");
  EXPECT_EQ(err(R"({"nextPageToken":5})"), "Cloud DNS record sets: nextPageToken is not a string");
  EXPECT_EQ(err(gcp_error_sample), "Cloud DNS record sets: an error answer: alreadyExists: ???");
}

TEST(gcp_change_body, addition_is_the_documented_request) {
  const std::string body = gcp_change_body(
      std::nullopt, gcp_record_set{"service.example.com.", "A", 3600, {"127.0.0.1", "127.0.0.2"}});
  EXPECT_EQ(json::parse(body), json::parse(gcp_change_request_sample));
  EXPECT_FALSE(json::parse(body).contains("deletions"));
}

TEST(gcp_change_body, replacement_and_deletion) {
  const gcp_record_set old_set{"app.example.com.", "A", 300, {"192.0.2.1"}};
  const gcp_record_set new_set{"app.example.com.", "A", 60, {"192.0.2.2"}};
  EXPECT_EQ(json::parse(gcp_change_body(old_set, new_set)), json::parse(R"({
    "kind": "dns#change",
    "deletions": [{"kind": "dns#resourceRecordSet", "name": "app.example.com.", "type": "A",
                   "ttl": 300, "rrdatas": ["192.0.2.1"]}],
    "additions": [{"kind": "dns#resourceRecordSet", "name": "app.example.com.", "type": "A",
                   "ttl": 60, "rrdatas": ["192.0.2.2"]}]})"));
  const json deletion = json::parse(gcp_change_body(old_set, std::nullopt));
  EXPECT_FALSE(deletion.contains("additions"));
  EXPECT_EQ(deletion["deletions"][0]["rrdatas"], json::array({"192.0.2.1"}));
  // What the writer writes, the reader reads back.
  const json listing{{"rrsets", deletion["deletions"]}};
  const gcp_record_sets back = parse_gcp_record_sets(listing.dump());
  ASSERT_EQ(back.sets.size(), 1u);
  EXPECT_EQ(back.sets[0].name, old_set.name);
  EXPECT_EQ(back.sets[0].ttl, old_set.ttl);
  EXPECT_EQ(back.sets[0].rrdatas, old_set.rrdatas);
}

TEST(gcp_change_body, refused) {
  auto err = [](std::optional<gcp_record_set> del, std::optional<gcp_record_set> add) {
    return error_of([&] { gcp_change_body(del, add); });
  };
  const gcp_record_set ok{"app.example.com.", "A", 300, {"192.0.2.1"}};
  auto with = [&](auto change) {
    gcp_record_set s = ok;
    change(s);
    return s;
  };
  EXPECT_EQ(err(std::nullopt, std::nullopt),
            "Cloud DNS change: neither a deletion nor an addition");
  EXPECT_EQ(err(std::nullopt, with([](auto& s) { s.name = "app.example.com"; })),
            "Cloud DNS change: addition name app.example.com has no trailing dot");
  EXPECT_EQ(err(with([](auto& s) { s.name = ""; }), ok),
            "Cloud DNS change: deletion name is empty");
  EXPECT_EQ(err(ok, with([](auto& s) { s.type = ""; })),
            "Cloud DNS change: addition type is empty");
  EXPECT_EQ(err(ok, with([](auto& s) { s.rrdatas.clear(); })),
            "Cloud DNS change: addition has no rrdatas");
  EXPECT_EQ(err(ok, with([](auto& s) {
                  s.rrdatas = {"192.0.2.1", ""};
                })),
            "Cloud DNS change: addition rrdata is empty");
  EXPECT_EQ(err(ok, with([](auto& s) { s.ttl = -1; })),
            "Cloud DNS change: addition ttl -1 is out of range 0..2147483647");
  EXPECT_EQ(err(ok, with([](auto& s) { s.ttl = 2147483648; })),
            "Cloud DNS change: addition ttl 2147483648 is out of range 0..2147483647");
  EXPECT_EQ(err(ok, with([](auto& s) { s.name = "a\n.example.com."; })),
            "Cloud DNS change: addition name has a byte outside printable ASCII");
  EXPECT_EQ(err(ok, with([](auto& s) { s.rrdatas = {"\xff"}; })),
            "Cloud DNS change: addition rrdata has a byte outside printable ASCII");
}

// ---- Azure DNS ----

TEST(azure_record_set, sample) {
  const azure_record_set r = parse_azure_record_set(azure_record_set_sample, "A");
  EXPECT_EQ(r.etag, "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(r.ttl, 3600);
  EXPECT_THAT(r.addresses, ElementsAre("127.0.0.1"));
}

TEST(azure_record_set, aaaa_and_empty) {
  const azure_record_set r = parse_azure_record_set(
      R"({"etag":"e1","type":"Microsoft.Network/dnsZones/AAAA","properties":{"TTL":60,"AAAARecords":[{"ipv6Address":"2001:db8::1"},{"ipv6Address":"::ffff:192.0.2.1"}],"ARecords":[{"ipv4Address":"junk"}]}})",
      "AAAA");
  EXPECT_EQ(r.etag, "e1");
  EXPECT_EQ(r.ttl, 60);
  EXPECT_THAT(r.addresses, ElementsAre("2001:db8::1", "::ffff:192.0.2.1"));
  EXPECT_THAT(parse_azure_record_set(R"({"etag":"e","properties":{"TTL":1}})", "A").addresses,
              IsEmpty());
}

TEST(azure_record_set, refused) {
  auto err = [](std::string_view body, std::string_view type = "A") {
    return error_of([&] { parse_azure_record_set(body, type); });
  };
  EXPECT_EQ(err(azure_record_set_sample, "MX"), "Azure DNS record set: type MX is not A or AAAA");
  EXPECT_EQ(err(azure_record_set_sample, "a"), "Azure DNS record set: type a is not A or AAAA");
  EXPECT_EQ(err(azure_record_set_sample, "AAAA"),
            "Azure DNS record set: type Microsoft.Network/dnsZones/A is not an AAAA record set");
  EXPECT_EQ(err(azure_put_request_sample), "Azure DNS record set: no etag");
  EXPECT_EQ(err(R"({"etag":"e"})"), "Azure DNS record set: no properties");
  EXPECT_EQ(err(R"({"etag":"e","properties":[]})"),
            "Azure DNS record set: properties is not an object");
  EXPECT_EQ(err(R"({"etag":"e","properties":{}})"), "Azure DNS record set: no properties.TTL");
  EXPECT_EQ(err(R"({"etag":"e","properties":{"TTL":"3600"}})"),
            "Azure DNS record set: properties.TTL is not a number");
  EXPECT_EQ(err(R"({"etag":"e","properties":{"TTL":1e10}})"),
            "Azure DNS record set: properties.TTL 10000000000.0 is out of range 0..2147483647");
  EXPECT_EQ(err(R"({"etag":"e\r\nX: y","properties":{"TTL":1}})"),
            "Azure DNS record set: etag has a byte outside printable ASCII");
  EXPECT_EQ(err(R"({"etag":"e","properties":{"TTL":1,"ARecords":{}}})"),
            "Azure DNS record set: properties.ARecords is not an array");
  EXPECT_EQ(err(R"({"etag":"e","properties":{"TTL":1,"ARecords":[{}]}})"),
            "Azure DNS record set: no properties.ARecords[0].ipv4Address");
  EXPECT_EQ(err(R"({"etag":"e","properties":{"TTL":1,"ARecords":[{"ipv4Address":"300.0.0.1"}]}})"),
            "Azure DNS record set: properties.ARecords[0].ipv4Address 300.0.0.1 is not an IPv4 "
            "address");
  EXPECT_EQ(
      err(R"({"etag":"e","properties":{"TTL":1,"ARecords":[{"ipv4Address":"192.0.2.1\u0000x"}]}})"),
      "Azure DNS record set: properties.ARecords[0].ipv4Address 192.0.2.1?x is not an IPv4 "
      "address");
  EXPECT_EQ(
      err(R"({"etag":"e","properties":{"TTL":1,"AAAARecords":[{"ipv6Address":"192.0.2.1"}]}})",
          "AAAA"),
      "Azure DNS record set: properties.AAAARecords[0].ipv6Address 192.0.2.1 is not an IPv6 "
      "address");
  EXPECT_EQ(err(arm_error_sample),
            "Azure DNS record set: an error answer: PreconditionFailed: The condition "
            "'00000000-0000-0000-0000-000000000001' in the If-Match header was not satisfied. "
            "The current was '00000000-0000-0000-0000-000000000000'.");
}

TEST(azure_record_set_body, documented_shape) {
  const json body = json::parse(azure_record_set_body("A", 3600, {"127.0.0.1"}));
  // The documented request with tandem's metadata instead of the example's.
  json expected = json::parse(azure_put_request_sample);
  expected["properties"]["metadata"] = {{"managed_by", "tandem"}};
  EXPECT_EQ(body, expected);

  EXPECT_EQ(json::parse(azure_record_set_body("AAAA", 60, {"2001:db8::1", "2001:db8::2"})),
            json::parse(R"({"properties":{"metadata":{"managed_by":"tandem"},"TTL":60,
                "AAAARecords":[{"ipv6Address":"2001:db8::1"},{"ipv6Address":"2001:db8::2"}]}})"));
  EXPECT_EQ(json::parse(azure_record_set_body("A", 0, {}))["properties"]["ARecords"],
            json::array());
}

TEST(azure_record_set_body, reads_back) {
  json body = json::parse(azure_record_set_body("AAAA", 300, {"2001:db8::7"}));
  body["etag"] = "W/\"abc\"";
  const azure_record_set r = parse_azure_record_set(body.dump(), "AAAA");
  EXPECT_EQ(r.etag, "W/\"abc\"");
  EXPECT_EQ(r.ttl, 300);
  EXPECT_THAT(r.addresses, ElementsAre("2001:db8::7"));
}

TEST(azure_record_set_body, refused) {
  auto err = [](std::string_view type, long long ttl, std::vector<std::string> addresses) {
    return error_of([&] { azure_record_set_body(type, ttl, addresses); });
  };
  EXPECT_EQ(err("CNAME", 60, {"192.0.2.1"}), "Azure DNS record set: type CNAME is not A or AAAA");
  EXPECT_EQ(err("A", -1, {"192.0.2.1"}),
            "Azure DNS record set: TTL -1 is out of range 0..2147483647");
  EXPECT_EQ(err("A", 2147483648, {"192.0.2.1"}),
            "Azure DNS record set: TTL 2147483648 is out of range 0..2147483647");
  EXPECT_EQ(err("A", 60, {"2001:db8::1"}),
            "Azure DNS record set: 2001:db8::1 is not an IPv4 address");
  EXPECT_EQ(err("AAAA", 60, {"192.0.2.1"}),
            "Azure DNS record set: 192.0.2.1 is not an IPv6 address");
  EXPECT_EQ(err("A", 60, {std::string("192.0.2.1\0x", 11)}),
            "Azure DNS record set: 192.0.2.1?x is not an IPv4 address");
  EXPECT_EQ(err("A", 60, {"\xff"}), "Azure DNS record set: ? is not an IPv4 address");
}

// ---- errors ----

TEST(cloud_error, google) {
  const std::optional<cloud_error_body> e = parse_cloud_error(gcp_error_sample);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "alreadyExists");
  EXPECT_EQ(e->message, "…");
  // Without errors[] (or a reason), the numeric code.
  const std::optional<cloud_error_body> bare = parse_cloud_error(
      R"({"error":{"code":412,"message":"Precondition not met for 'entity.change.deletions[0]'","errors":[{"domain":"global"}]}})");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->code, "412");
  EXPECT_EQ(bare->message, "Precondition not met for 'entity.change.deletions[0]'");
}

TEST(cloud_error, arm) {
  const std::optional<cloud_error_body> e = parse_cloud_error(arm_error_sample);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "PreconditionFailed");
  EXPECT_THAT(e->message, HasSubstr("If-Match header was not satisfied"));
  const std::optional<cloud_error_body> bare = parse_cloud_error(R"({"error":{"code":"X"}})");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->code, "X");
  EXPECT_EQ(bare->message, "");
}

TEST(cloud_error, oauth) {
  const std::optional<cloud_error_body> e = parse_cloud_error(oauth_error_sample);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "invalid_request");
  EXPECT_EQ(e->message, "Required metadata header not specified");
  const std::optional<cloud_error_body> bare = parse_cloud_error(R"({"error":"invalid_grant"})");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->code, "invalid_grant");
  EXPECT_EQ(bare->message, "");
}

TEST(cloud_error, not_an_error_body) {
  for (const std::string_view body :
       {imds_html_error, std::string_view(""), std::string_view("null"), std::string_view("[]"),
        std::string_view(R"({"error":""})"), std::string_view(R"({"error":5})"),
        std::string_view(R"({"error":{}})"), std::string_view(R"({"error":{"message":"m"}})"),
        std::string_view(R"({"error":{"code":1.5}})"), std::string_view(R"({"error":{"code":""}})"),
        gce_token_sample, azure_token_sample, gcp_change_response_sample}) {
    EXPECT_EQ(parse_cloud_error(body), std::nullopt) << body;
  }
}

// ---- outsized and malformed bodies ----

TEST(cloud_json, body_size_cap) {
  // 8 MiB of whitespace around a valid document: refused by size, not read.
  std::string big(size_t{8} << 20, ' ');
  big.append(gce_token_sample);
  EXPECT_EQ(error_of([&] { parse_gce_token(big, sys_clock::now()); }),
            "GCE token: body larger than 8 MiB");
  EXPECT_EQ(error_of([&] { parse_imds_role_credentials(big); }),
            "IMDS role credentials: body larger than 8 MiB");
  std::string big_error(size_t{8} << 20, ' ');
  big_error.append(oauth_error_sample);
  EXPECT_EQ(parse_cloud_error(big_error), std::nullopt);
  // Just under the cap is read.
  std::string under((size_t{8} << 20) - gce_token_sample.size(), ' ');
  under.append(gce_token_sample);
  EXPECT_EQ(parse_gce_token(under, sys_clock::now()).token, "XXX");
}

TEST(cloud_json, deep_nesting_and_broken_text) {
  const std::string deep = std::string(200'000, '[') + std::string(200'000, ']');
  EXPECT_EQ(error_of([&] { parse_gcp_record_sets(deep); }),
            "Cloud DNS record sets: not a JSON object");
  const std::string deep_member =
      R"({"rrsets":[],"x":)" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  EXPECT_THAT(parse_gcp_record_sets(deep_member).sets, IsEmpty());
  EXPECT_EQ(parse_cloud_error(std::string(200'000, '{')), std::nullopt);
  // Invalid UTF-8 inside a string is not JSON.
  EXPECT_EQ(error_of([] { parse_gcp_change("{\"id\":\"1\",\"status\":\"\xff\"}"); }),
            "Cloud DNS change: not a JSON object");
  // A NUL byte ends nothing: the document is the whole body (nlohmann alone would stop there).
  static constexpr char with_nul[] = "{\"id\":\"1\",\"status\":\"done\"}\0x";
  EXPECT_EQ(error_of([] { parse_gcp_change(std::string_view(with_nul, sizeof with_nul - 1)); }),
            "Cloud DNS change: not a JSON object");
  // Comments are not JSON.
  EXPECT_EQ(error_of([] { parse_gcp_change(R"({"id":"1",/* c */"status":"done"})"); }),
            "Cloud DNS change: not a JSON object");
}

}  // namespace
}  // namespace tandem::ctl::cloud
