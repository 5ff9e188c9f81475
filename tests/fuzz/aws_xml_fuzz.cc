// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the AWS XML parsers (control/cloud/aws_xml.h) on any body an endpoint, a
// proxy or a fake server could answer with, and r53_change_batch on any strings.
//
// Input: byte 0 chooses the function ((byte - '0') mod 256 mod 10, so the seeds start with a
// readable digit), the rest is its input:
//   0 parse_aws_error              5 parse_describe_addresses
//   1 parse_ec2_ack                6 parse_describe_availability_zones
//   2 parse_describe_route_tables  7 parse_r53_change_info
//   3 parse_describe_vpcs          8 parse_r53_list_record_sets
//   4 parse_associate_address      9 r53_change_batch: byte 1 = flags (bits 0-1 the action, 3 =
//     an invalid one; bit 2 a TTL from bytes 2..5, big-endian, signed), then NUL-separated name,
//     type, set identifier, comment and values.
// Invariants:
// - a parser throws nothing but aws_xml_error, and parse_aws_error throws nothing at all;
// - every string a parser returns is trimmed of XML whitespace and holds no NUL;
// - fields the shapes require are never returned empty (request ids, route table ids, route
//   states, VPC ids, public IPs, zone names and states, record names and types, values, change
//   ids and statuses); a change id holds only [A-Za-z0-9_-]; a truncated record list names the
//   next record; VPC CIDR blocks are unique;
// - a body parse_aws_error reads as an error is refused by every success parser (the success
//   roots are never error roots), and every body is also tried as an error body;
// - r53_change_batch throws exactly when its input is invalid (an action other than CREATE,
//   DELETE, UPSERT; a blank name, type or value; no values; a byte outside printable ASCII; a
//   TTL outside 0..2^31-1), and otherwise writes XML that tinyxml2 reads back to the same fields
//   (ends trimmed), with the optional elements present exactly when given.
#include <tinyxml2.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "control/cloud/aws_xml.h"

namespace {

using namespace tandem::ctl::cloud;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_aws_xml: invariant broken: %s\n", what);
  std::abort();
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

void check_text(const std::string& s) {
  if (trimmed(s).size() != s.size()) fail("a returned string is not trimmed");
  if (s.find('\0') != std::string::npos) fail("a returned string holds a NUL");
}

void check_required(const std::string& s) {
  check_text(s);
  if (s.empty()) fail("a required field returned empty");
}

// Runs one success parser; false when it refused the body.
template <class F>
bool accepted(F&& parse) {
  try {
    parse();
    return true;
  } catch (const aws_xml_error&) {
    return false;
  }
}

bool run_parser(unsigned which, std::string_view body) {
  switch (which) {
    case 0:
      return accepted([&] {
        const sns_publish_result r = parse_sns_publish(body);
        check_required(r.message_id);
        check_text(r.request_id);
      });
    case 1:
      return accepted([&] { check_required(parse_ec2_ack(body)); });
    case 2:
      return accepted([&] {
        const ec2_route_tables r = parse_describe_route_tables(body);
        check_required(r.request_id);
        check_text(r.next_token);
        for (const ec2_route_table& t : r.tables) {
          check_required(t.route_table_id);
          check_text(t.vpc_id);
          for (const ec2_route& e : t.routes) {
            check_text(e.destination_cidr);
            check_text(e.network_interface_id);
            check_text(e.instance_id);
            check_text(e.gateway_id);
            check_required(e.state);
          }
        }
      });
    case 3:
      return accepted([&] {
        const ec2_vpcs r = parse_describe_vpcs(body);
        check_required(r.request_id);
        for (const ec2_vpc& v : r.vpcs) {
          check_required(v.vpc_id);
          check_text(v.state);
          for (size_t i = 0; i < v.cidr_blocks.size(); ++i) {
            check_required(v.cidr_blocks[i]);
            for (size_t j = 0; j < i; ++j)
              if (v.cidr_blocks[j] == v.cidr_blocks[i]) fail("a VPC CIDR block listed twice");
          }
        }
      });
    case 4:
      return accepted([&] {
        const ec2_association r = parse_associate_address(body);
        check_required(r.request_id);
        check_required(r.association_id);
      });
    case 5:
      return accepted([&] {
        const ec2_addresses r = parse_describe_addresses(body);
        check_required(r.request_id);
        for (const ec2_address& a : r.addresses) {
          check_required(a.public_ip);
          check_text(a.allocation_id);
          check_text(a.association_id);
          check_text(a.network_interface_id);
          check_text(a.instance_id);
          check_text(a.private_ip);
        }
      });
    case 6:
      return accepted([&] {
        const ec2_zones r = parse_describe_availability_zones(body);
        check_required(r.request_id);
        for (const ec2_zone& z : r.zones) {
          check_required(z.zone_name);
          check_text(z.zone_id);
          check_required(z.state);
          for (const std::string& m : z.messages)
            check_required(m);
        }
      });
    case 7:
      return accepted([&] {
        const r53_change_info r = parse_r53_change_info(body);
        check_required(r.id);
        check_required(r.status);
        for (const char c : r.id) {
          const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '_' || c == '-';
          if (!ok) fail("a change id with a character that could leave the URL path");
        }
      });
    case 8:
      return accepted([&] {
        const r53_record_sets r = parse_r53_list_record_sets(body);
        for (const r53_record_set& s : r.sets) {
          check_required(s.name);
          check_required(s.type);
          check_text(s.set_identifier);
          if (s.ttl && *s.ttl < 0) fail("a negative TTL");
          for (const std::string& v : s.values)
            check_required(v);
        }
        if (r.truncated) {
          check_required(r.next_name);
          check_required(r.next_type);
        } else if (!r.next_name.empty() || !r.next_type.empty()) {
          fail("a next record on the last page");
        }
      });
    default:
      fail("no such parser");
  }
}

std::vector<std::string_view> split_nul(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    const size_t nul = s.find('\0');
    out.push_back(s.substr(0, nul));
    if (nul == std::string_view::npos) return out;
    s.remove_prefix(nul + 1);
  }
}

bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string text_of(const tinyxml2::XMLElement* e) {
  if (e == nullptr) fail("r53_change_batch: an element is missing");
  const char* t = e->GetText();
  return t != nullptr ? std::string(t) : std::string();
}

const tinyxml2::XMLElement* need(const tinyxml2::XMLElement* parent, const char* name) {
  if (parent == nullptr) fail("r53_change_batch: a parent element is missing");
  const tinyxml2::XMLElement* e = parent->FirstChildElement(name);
  if (e == nullptr) fail("r53_change_batch: an element is missing");
  return e;
}

void same(std::string_view written, std::string_view read) {
  if (trimmed(written) != trimmed(read)) fail("r53_change_batch: a field did not read back");
}

void run_change_batch(const uint8_t* data, size_t size) {
  if (size < 6) return;
  static constexpr std::string_view actions[] = {"CREATE", "DELETE", "UPSERT", "upsert"};
  const std::string_view action = actions[data[1] & 3];
  r53_record_set set;
  if ((data[1] & 4) != 0) {
    const auto ttl = static_cast<int32_t>(static_cast<uint32_t>(data[2]) << 24 |
                                          static_cast<uint32_t>(data[3]) << 16 |
                                          static_cast<uint32_t>(data[4]) << 8 | data[5]);
    set.ttl = ttl;
  }
  const std::vector<std::string_view> parts =
      split_nul(std::string_view(reinterpret_cast<const char*>(data + 6), size - 6));
  const auto part = [&](size_t i) { return i < parts.size() ? parts[i] : std::string_view(); };
  set.name = part(0);
  set.type = part(1);
  set.set_identifier = part(2);
  const std::string_view comment = part(3);
  for (size_t i = 4; i < parts.size(); ++i)
    set.values.emplace_back(parts[i]);

  bool valid = (data[1] & 3) != 3 && !trimmed(set.name).empty() && !trimmed(set.type).empty() &&
               !set.values.empty() && printable(set.name) && printable(set.type) &&
               printable(set.set_identifier) && printable(comment) && (!set.ttl || *set.ttl >= 0);
  for (const std::string& v : set.values)
    valid = valid && !trimmed(v).empty() && printable(v);

  std::string body;
  try {
    body = r53_change_batch(action, set, comment);
  } catch (const aws_xml_error&) {
    if (valid) fail("r53_change_batch refused a valid change");
    return;
  }
  if (!valid) fail("r53_change_batch accepted an invalid change");

  tinyxml2::XMLDocument doc;
  if (doc.Parse(body.data(), body.size()) != tinyxml2::XML_SUCCESS) {
    fail("r53_change_batch wrote something that is not XML");
  }
  const tinyxml2::XMLElement* root = doc.RootElement();
  if (root == nullptr || std::string_view(root->Name()) != "ChangeResourceRecordSetsRequest" ||
      root->Attribute("xmlns", "https://route53.amazonaws.com/doc/2013-04-01/") == nullptr) {
    fail("r53_change_batch: wrong root element or namespace");
  }
  const tinyxml2::XMLElement* batch = need(root, "ChangeBatch");
  const tinyxml2::XMLElement* c = batch->FirstChildElement("Comment");
  if ((c != nullptr) != !comment.empty()) fail("r53_change_batch: Comment present iff given");
  if (c != nullptr) same(comment, text_of(c));
  const tinyxml2::XMLElement* change = need(need(batch, "Changes"), "Change");
  same(action, text_of(need(change, "Action")));
  const tinyxml2::XMLElement* rrs = need(change, "ResourceRecordSet");
  same(set.name, text_of(need(rrs, "Name")));
  same(set.type, text_of(need(rrs, "Type")));
  const tinyxml2::XMLElement* id = rrs->FirstChildElement("SetIdentifier");
  if ((id != nullptr) != !set.set_identifier.empty()) {
    fail("r53_change_batch: SetIdentifier present iff given");
  }
  if (id != nullptr) same(set.set_identifier, text_of(id));
  const tinyxml2::XMLElement* ttl = rrs->FirstChildElement("TTL");
  if ((ttl != nullptr) != set.ttl.has_value()) fail("r53_change_batch: TTL present iff given");
  if (ttl != nullptr) same(std::to_string(*set.ttl), text_of(ttl));
  size_t n = 0;
  for (const tinyxml2::XMLElement* rr = need(rrs, "ResourceRecords")->FirstChildElement();
       rr != nullptr; rr = rr->NextSiblingElement(), ++n) {
    if (n >= set.values.size()) fail("r53_change_batch: more values read back than written");
    same(set.values[n], text_of(need(rr, "Value")));
  }
  if (n != set.values.size()) fail("r53_change_batch: fewer values read back than written");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const unsigned which = static_cast<uint8_t>(data[0] - '0') % 10;
  if (which == 9) {
    run_change_batch(data, size);
    return 0;
  }
  // The driver (and libFuzzer) hand over an exactly sized block, so ASan sees any read past it.
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  bool is_error = false;
  try {
    if (const std::optional<aws_error_body> e = parse_aws_error(body)) {
      is_error = true;
      check_required(e->code);
      check_text(e->message);
      check_text(e->request_id);
    }
  } catch (...) {
    fail("parse_aws_error threw");
  }
  bool ok = false;
  try {
    ok = run_parser(which, body);  // catches aws_xml_error itself
  } catch (...) {
    fail("a parser threw something other than aws_xml_error");
  }
  if (ok && is_error) fail("an error body accepted as a success response");
  return 0;
}
