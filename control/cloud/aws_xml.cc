// SPDX-License-Identifier: Apache-2.0
// The AWS response parsers and the Route 53 change-batch writer of aws_xml.h, on tinyxml2.
//
// Why tinyxml2: it builds a DOM and does nothing else. It has no DTD processing at all: a
// <!DOCTYPE> is kept as an opaque node (which parse_document rejects), only the five predefined
// entities and character references are decoded, any other entity reference stays in the text
// as written, and nothing is ever fetched. So a body from a hostile or broken peer (a proxy, a
// fake endpoint) cannot make us read a file, open a connection or expand entities without
// bound. Its parser recurses once per element level but stops at TINYXML2_MAX_ELEMENT_DEPTH;
// the code here walks the tree with loops over direct children only, never recursively.
#include "control/cloud/aws_xml.h"

#include <tinyxml2.h>

#include <charconv>
#include <cstddef>
#include <system_error>
#include <utility>

namespace tandem::ctl::cloud {
namespace {

using tinyxml2::XMLDocument;
using tinyxml2::XMLElement;
using tinyxml2::XMLNode;

// Far above any answer we ask for (a page of DescribeRouteTables is well under 1 MiB), low enough
// that a runaway body cannot make the DOM take the daemon's memory.
constexpr size_t max_body = size_t{8} << 20;

bool is_xml_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_xml_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_xml_space(s.back()))
    s.remove_suffix(1);
  return s;
}

// Text from the body, quoted for an error message: cut short and without control bytes, so a
// hostile body cannot flood or forge log lines.
std::string quoted(std::string_view s) {
  constexpr size_t max = 64;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  if (s.size() > max) out += "...";
  return out + "\"";
}

std::string_view value_of(const XMLNode& n) {
  const char* v = n.Value();
  return v != nullptr ? std::string_view(v) : std::string_view();
}

// The element's name without its namespace prefix (xmlns declarations are not looked at: AWS
// changes the namespace with the API version, e.g. DisassociateAddress answers with 2013-10-15).
std::string_view local_name(const XMLElement& e) {
  const std::string_view n = value_of(e);
  const size_t colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

const XMLElement* child(const XMLElement& parent, std::string_view name) {
  for (const XMLElement* c = parent.FirstChildElement(); c != nullptr; c = c->NextSiblingElement())
    if (local_name(*c) == name) return c;
  return nullptr;
}

// Parses `xml` into `doc` and returns its only element at the top level. `what` prefixes the
// messages.
const XMLElement& parse_document(XMLDocument& doc, std::string_view xml, std::string_view what) {
  const std::string prefix = std::string(what) + ": ";
  if (xml.size() > max_body) throw aws_xml_error(prefix + "body larger than 8 MiB");
  // tinyxml2 works on a NUL-terminated copy and would stop at an embedded NUL, which XML does
  // not allow anyway.
  if (xml.find('\0') != std::string_view::npos) throw aws_xml_error(prefix + "not XML: NUL byte");
  if (doc.Parse(xml.data(), xml.size()) != tinyxml2::XML_SUCCESS) {
    throw aws_xml_error(prefix + "not XML: " + doc.ErrorName() + " at line " +
                        std::to_string(doc.ErrorLineNum()));
  }
  const XMLElement* root = nullptr;
  for (const XMLNode* n = doc.FirstChild(); n != nullptr; n = n->NextSibling()) {
    if (n->ToDeclaration() != nullptr || n->ToComment() != nullptr) continue;
    if (n->ToUnknown() != nullptr) throw aws_xml_error(prefix + "a DOCTYPE is not accepted");
    if (const XMLElement* e = n->ToElement()) {
      if (root != nullptr) throw aws_xml_error(prefix + "not XML: more than one root element");
      root = e;
      continue;
    }
    throw aws_xml_error(prefix + "not XML: text outside the root element");
  }
  if (root == nullptr) throw aws_xml_error(prefix + "not XML: no root element");
  return *root;
}

// Reads the fields of one document; every complaint names the document.
class reader {
 public:
  explicit reader(std::string_view what) : what_(what) {}

  [[noreturn]] void fail(std::string_view msg) const {
    throw aws_xml_error(what_ + ": " + std::string(msg));
  }

  // Parses the body, whose root element must be <root>.
  const XMLElement& document(XMLDocument& doc, std::string_view xml, std::string_view root) const {
    const XMLElement& r = parse_document(doc, xml, what_);
    if (local_name(r) != root) {
      fail("root element is " + quoted(local_name(r)) + ", not " + quoted(root));
    }
    return r;
  }

  [[nodiscard]] const XMLElement& need(const XMLElement& parent, std::string_view name) const {
    const XMLElement* c = child(parent, name);
    if (c == nullptr) fail("missing " + std::string(name));
    return *c;
  }

  // A leaf's text and CDATA children joined (comments skipped), trimmed. A "leaf" that holds
  // elements is a shape we do not know.
  [[nodiscard]] std::string text(const XMLElement& e) const {
    std::string out;
    for (const XMLNode* n = e.FirstChild(); n != nullptr; n = n->NextSibling()) {
      if (n->ToText() != nullptr) {
        out += value_of(*n);
      } else if (n->ToElement() != nullptr) {
        fail(std::string(local_name(e)) + " holds elements");
      }
    }
    return std::string(trim(out));
  }

  [[nodiscard]] std::string need_text(const XMLElement& parent, std::string_view name) const {
    std::string t = text(need(parent, name));
    if (t.empty()) fail("empty " + std::string(name));
    return t;
  }

  [[nodiscard]] std::string opt_text(const XMLElement& parent, std::string_view name) const {
    const XMLElement* c = child(parent, name);
    return c != nullptr ? text(*c) : std::string();
  }

  // Calls f on every direct child <name> of `list`, in document order.
  template <class F>
  void each(const XMLElement& list, std::string_view name, F&& f) const {
    for (const XMLElement* c = list.FirstChildElement(); c != nullptr;
         c = c->NextSiblingElement()) {
      if (local_name(*c) == name) f(*c);
    }
  }

  // An EC2 <return>: anything but "true" means the action did not happen.
  void need_return_true(const XMLElement& root) const {
    const std::string r = need_text(root, "return");
    if (r != "true") fail("return is " + quoted(r));
  }

 private:
  std::string what_;
};

// Route 53's GetChange takes the id in its URL path: only the characters change ids are made of,
// so a body cannot steer that request to another path.
bool is_change_id(std::string_view id) {
  if (id.empty()) return false;
  for (const char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<aws_error_body> error_body(std::string_view xml) {
  XMLDocument doc;
  const XMLElement& root = parse_document(doc, xml, "AWS error");
  const std::string_view name = local_name(root);
  const reader r("AWS error");
  aws_error_body out;
  // The request id is informational: either spelling, wherever the shape puts it.
  const auto request_id = [&](const XMLElement& e) {
    std::string id = r.opt_text(e, "RequestID");
    return id.empty() ? r.opt_text(e, "RequestId") : id;
  };
  if (name == "InvalidChangeBatch") {
    out.code = "InvalidChangeBatch";
    if (const XMLElement* messages = child(root, "Messages")) {
      r.each(*messages, "Message", [&](const XMLElement& m) {
        const std::string t = r.text(m);
        if (t.empty()) return;
        if (!out.message.empty()) out.message += "; ";
        out.message += t;
      });
    }
    out.request_id = request_id(root);
    return out;
  }
  const XMLElement* error = nullptr;
  if (name == "Response") {
    // EC2: <Response><Errors><Error>... (the first error speaks for the request).
    if (const XMLElement* errors = child(root, "Errors")) error = child(*errors, "Error");
  } else if (name == "ErrorResponse") {
    error = child(root, "Error");
  }
  if (error == nullptr) return std::nullopt;
  out.code = r.opt_text(*error, "Code");
  if (out.code.empty()) return std::nullopt;
  out.message = r.opt_text(*error, "Message");
  out.request_id = request_id(root);
  return out;
}

bool printable_ascii(std::string_view s) {
  for (const char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
}

void append_element(std::string& out, std::string_view name, std::string_view value) {
  out += '<';
  out += name;
  out += '>';
  append_escaped(out, value);
  out += "</";
  out += name;
  out += '>';
}

}  // namespace

std::optional<aws_error_body> parse_aws_error(std::string_view xml) {
  // Not an AWS error body in any way (not XML, another document, a malformed error) is the
  // caller's cue to fall back on the HTTP status.
  try {
    return error_body(xml);
  } catch (const aws_xml_error&) {
    return std::nullopt;
  }
}

// ---- EC2 ----

std::string parse_ec2_ack(std::string_view xml) {
  XMLDocument doc;
  const XMLElement& root = parse_document(doc, xml, "EC2 ack");
  // Any <ActionResponse> but the error roots: the caller knows which action it sent.
  constexpr std::string_view suffix = "Response";
  const std::string_view name = local_name(root);
  if (name.size() <= suffix.size() || !name.ends_with(suffix) || name == "ErrorResponse") {
    throw aws_xml_error("EC2 ack: root element " + quoted(name) + " is not an action's response");
  }
  const reader r(name.substr(0, name.size() - suffix.size()));
  std::string id = r.need_text(root, "requestId");
  r.need_return_true(root);
  return id;
}

ec2_route_tables parse_describe_route_tables(std::string_view xml) {
  XMLDocument doc;
  const reader r("DescribeRouteTables");
  const XMLElement& root = r.document(doc, xml, "DescribeRouteTablesResponse");
  ec2_route_tables out;
  out.request_id = r.need_text(root, "requestId");
  r.each(r.need(root, "routeTableSet"), "item", [&](const XMLElement& item) {
    ec2_route_table& t = out.tables.emplace_back();
    t.route_table_id = r.need_text(item, "routeTableId");
    t.vpc_id = r.opt_text(item, "vpcId");
    // Every table has at least its local route, and EC2 always writes the set.
    r.each(r.need(item, "routeSet"), "item", [&](const XMLElement& route) {
      ec2_route& e = t.routes.emplace_back();
      e.destination_cidr = r.opt_text(route, "destinationCidrBlock");
      e.network_interface_id = r.opt_text(route, "networkInterfaceId");
      e.instance_id = r.opt_text(route, "instanceId");
      e.gateway_id = r.opt_text(route, "gatewayId");
      e.state = r.need_text(route, "state");
    });
  });
  out.next_token = r.opt_text(root, "nextToken");
  return out;
}

ec2_vpcs parse_describe_vpcs(std::string_view xml) {
  XMLDocument doc;
  const reader r("DescribeVpcs");
  const XMLElement& root = r.document(doc, xml, "DescribeVpcsResponse");
  ec2_vpcs out;
  out.request_id = r.need_text(root, "requestId");
  r.each(r.need(root, "vpcSet"), "item", [&](const XMLElement& item) {
    ec2_vpc& v = out.vpcs.emplace_back();
    v.vpc_id = r.need_text(item, "vpcId");
    v.state = r.opt_text(item, "state");
    const auto add = [&](std::string cidr) {
      if (cidr.empty()) return;
      for (const std::string& have : v.cidr_blocks)
        if (have == cidr) return;
      v.cidr_blocks.push_back(std::move(cidr));
    };
    // Walked in document order, so the blocks come out in the order the body lists them.
    for (const XMLElement* c = item.FirstChildElement(); c != nullptr;
         c = c->NextSiblingElement()) {
      const std::string_view n = local_name(*c);
      if (n == "cidrBlock") {
        add(r.text(*c));
      } else if (n == "cidrBlockAssociationSet") {
        r.each(*c, "item", [&](const XMLElement& a) {
          const XMLElement* st = child(a, "cidrBlockState");
          if (st != nullptr && r.opt_text(*st, "state") == "associated") {
            add(r.opt_text(a, "cidrBlock"));
          }
        });
      }
    }
  });
  return out;
}

ec2_association parse_associate_address(std::string_view xml) {
  XMLDocument doc;
  const reader r("AssociateAddress");
  const XMLElement& root = r.document(doc, xml, "AssociateAddressResponse");
  ec2_association out;
  out.request_id = r.need_text(root, "requestId");
  r.need_return_true(root);
  out.association_id = r.need_text(root, "associationId");
  return out;
}

ec2_addresses parse_describe_addresses(std::string_view xml) {
  XMLDocument doc;
  const reader r("DescribeAddresses");
  const XMLElement& root = r.document(doc, xml, "DescribeAddressesResponse");
  ec2_addresses out;
  out.request_id = r.need_text(root, "requestId");
  r.each(r.need(root, "addressesSet"), "item", [&](const XMLElement& item) {
    ec2_address& a = out.addresses.emplace_back();
    a.public_ip = r.need_text(item, "publicIp");
    a.allocation_id = r.opt_text(item, "allocationId");
    a.association_id = r.opt_text(item, "associationId");
    a.network_interface_id = r.opt_text(item, "networkInterfaceId");
    a.instance_id = r.opt_text(item, "instanceId");
    a.private_ip = r.opt_text(item, "privateIpAddress");
  });
  return out;
}

ec2_zones parse_describe_availability_zones(std::string_view xml) {
  XMLDocument doc;
  const reader r("DescribeAvailabilityZones");
  const XMLElement& root = r.document(doc, xml, "DescribeAvailabilityZonesResponse");
  ec2_zones out;
  out.request_id = r.need_text(root, "requestId");
  r.each(r.need(root, "availabilityZoneInfo"), "item", [&](const XMLElement& item) {
    ec2_zone& z = out.zones.emplace_back();
    z.zone_name = r.need_text(item, "zoneName");
    z.zone_id = r.opt_text(item, "zoneId");
    z.state = r.need_text(item, "zoneState");
    if (const XMLElement* messages = child(item, "messageSet")) {
      r.each(*messages, "item", [&](const XMLElement& m) {
        std::string t = r.opt_text(m, "message");
        if (!t.empty()) z.messages.push_back(std::move(t));
      });
    }
  });
  return out;
}

// ---- Route 53 ----

sns_publish_result parse_sns_publish(std::string_view xml) {
  XMLDocument doc;
  const reader r("Publish");
  const XMLElement& root = r.document(doc, xml, "PublishResponse");
  sns_publish_result out;
  out.message_id = r.need_text(r.need(root, "PublishResult"), "MessageId");
  if (const XMLElement* meta = child(root, "ResponseMetadata"))
    out.request_id = r.opt_text(*meta, "RequestId");
  return out;
}

r53_change_info parse_r53_change_info(std::string_view xml) {
  XMLDocument doc;
  const XMLElement& root = parse_document(doc, xml, "Route 53 change");
  const std::string_view name = local_name(root);
  if (name != "ChangeResourceRecordSetsResponse" && name != "GetChangeResponse") {
    throw aws_xml_error("Route 53 change: root element is " + quoted(name) +
                        ", not ChangeResourceRecordSetsResponse or GetChangeResponse");
  }
  const reader r(name.substr(0, name.size() - std::string_view("Response").size()));
  const XMLElement& info = r.need(root, "ChangeInfo");
  r53_change_info out;
  out.id = r.need_text(info, "Id");
  constexpr std::string_view prefix = "/change/";
  if (out.id.starts_with(prefix)) out.id.erase(0, prefix.size());
  if (!is_change_id(out.id)) r.fail("Id " + quoted(out.id) + " is not a change id");
  out.status = r.need_text(info, "Status");
  return out;
}

r53_record_sets parse_r53_list_record_sets(std::string_view xml) {
  XMLDocument doc;
  const reader r("ListResourceRecordSets");
  const XMLElement& root = r.document(doc, xml, "ListResourceRecordSetsResponse");
  r53_record_sets out;
  r.each(r.need(root, "ResourceRecordSets"), "ResourceRecordSet", [&](const XMLElement& item) {
    r53_record_set& s = out.sets.emplace_back();
    s.name = r.need_text(item, "Name");
    s.type = r.need_text(item, "Type");
    if (const XMLElement* ttl = child(item, "TTL")) {
      const std::string t = r.text(*ttl);
      long long v = 0;
      const char* end = t.data() + t.size();
      std::from_chars_result res{t.data(), std::errc::invalid_argument};
      // Digits only: from_chars would take a sign.
      if (!t.empty() && t[0] >= '0' && t[0] <= '9') res = std::from_chars(t.data(), end, v);
      if (res.ec != std::errc() || res.ptr != end) r.fail("TTL " + quoted(t) + " is not a number");
      s.ttl = v;
    }
    if (const XMLElement* records = child(item, "ResourceRecords")) {
      r.each(*records, "ResourceRecord",
             [&](const XMLElement& rr) { s.values.push_back(r.need_text(rr, "Value")); });
    }
    s.set_identifier = r.opt_text(item, "SetIdentifier");
  });
  const std::string truncated = r.need_text(root, "IsTruncated");
  if (truncated == "true") {
    out.truncated = true;
    // Without them the next page cannot be asked for; carrying on would loop on this one.
    out.next_name = r.need_text(root, "NextRecordName");
    out.next_type = r.need_text(root, "NextRecordType");
  } else if (truncated != "false") {
    r.fail("IsTruncated is " + quoted(truncated));
  }
  return out;
}

std::string r53_change_batch(std::string_view action, const r53_record_set& set,
                             std::string_view comment) {
  const reader r("ChangeResourceRecordSets");
  if (action != "CREATE" && action != "DELETE" && action != "UPSERT") {
    r.fail("action " + quoted(action) + " is not CREATE, DELETE or UPSERT");
  }
  // Route 53 wants everything outside printable ASCII written as \ooo escapes in names and
  // values; a raw control byte could not even be carried by XML 1.0.
  const auto check = [&](std::string_view field, std::string_view v, bool required) {
    if (required && trim(v).empty()) r.fail("empty " + std::string(field));
    if (!printable_ascii(v)) r.fail(std::string(field) + " has a byte outside printable ASCII");
  };
  check("Name", set.name, true);
  check("Type", set.type, true);
  check("SetIdentifier", set.set_identifier, false);
  check("Comment", comment, false);
  // No alias targets here, so a record set without values is not one Route 53 would take.
  if (set.values.empty()) r.fail("no Value");
  for (const std::string& v : set.values)
    check("Value", v, true);
  if (set.ttl && (*set.ttl < 0 || *set.ttl > 2147483647)) {
    r.fail("TTL " + std::to_string(*set.ttl) + " is outside 0..2147483647");
  }

  std::string out =
      R"(<?xml version="1.0" encoding="UTF-8"?>)"
      R"(<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/">)"
      "<ChangeBatch>";
  if (!comment.empty()) append_element(out, "Comment", comment);
  out += "<Changes><Change>";
  append_element(out, "Action", action);
  // The order of Route 53's schema: Name, Type, SetIdentifier, ..., TTL, ResourceRecords.
  out += "<ResourceRecordSet>";
  append_element(out, "Name", set.name);
  append_element(out, "Type", set.type);
  if (!set.set_identifier.empty()) append_element(out, "SetIdentifier", set.set_identifier);
  if (set.ttl) append_element(out, "TTL", std::to_string(*set.ttl));
  out += "<ResourceRecords>";
  for (const std::string& v : set.values) {
    out += "<ResourceRecord>";
    append_element(out, "Value", v);
    out += "</ResourceRecord>";
  }
  out +=
      "</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch>"
      "</ChangeResourceRecordSetsRequest>";
  return out;
}

}  // namespace tandem::ctl::cloud
