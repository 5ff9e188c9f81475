// SPDX-License-Identifier: Apache-2.0
// Parsers for the XML that EC2 (Query protocol) and Route 53 (REST-XML) answer with, shapes as in
// docs/cloud.md and ../shared/cloud/API_SHAPES.md. They read outside input: every one has a
// libFuzzer target (fuzz_aws_xml) and throws aws_xml_error, never anything else, on a body that
// is not the expected document. Element names are matched without their namespace; unknown
// elements are skipped (AWS adds fields over time).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::ctl::cloud {

struct aws_xml_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An error body of any AWS XML service: EC2's <Response><Errors><Error>..<RequestID>, the
// <ErrorResponse><Error>..<RequestId> of Route 53 / STS / SNS / CloudWatch, and Route 53's
// <InvalidChangeBatch><Messages><Message> (code "InvalidChangeBatch", the messages joined by
// "; "). nullopt when the body is none of these (an HTML page from a proxy, an empty body).
struct aws_error_body {
  std::string code;
  std::string message;
  std::string request_id;
};
std::optional<aws_error_body> parse_aws_error(std::string_view xml);

// ---- EC2 ----

// <requestId> and <return> of an action that only acknowledges (ReplaceRoute,
// DisassociateAddress): throws when the document is not such a response or return is not
// "true".
std::string parse_ec2_ack(std::string_view xml);  // the request id

struct ec2_route {
  std::string destination_cidr;  // destinationCidrBlock ("" for IPv6 / prefix-list routes)
  std::string network_interface_id;
  std::string instance_id;
  std::string gateway_id;
  std::string state;  // active | blackhole
};
struct ec2_route_table {
  std::string route_table_id;
  std::string vpc_id;
  std::vector<ec2_route> routes;
};
struct ec2_route_tables {
  std::string request_id;
  std::vector<ec2_route_table> tables;
  std::string next_token;  // "" on the last page
};
ec2_route_tables parse_describe_route_tables(std::string_view xml);

struct ec2_vpc {
  std::string vpc_id;
  std::string state;
  // cidrBlock and every associated IPv4 block of cidrBlockAssociationSet (state "associated"),
  // without duplicates, in document order.
  std::vector<std::string> cidr_blocks;
};
struct ec2_vpcs {
  std::string request_id;
  std::vector<ec2_vpc> vpcs;
};
ec2_vpcs parse_describe_vpcs(std::string_view xml);

struct ec2_association {
  std::string request_id;
  std::string association_id;
};
ec2_association parse_associate_address(std::string_view xml);

struct ec2_address {
  std::string public_ip;
  std::string allocation_id;
  std::string association_id;        // "" when not associated
  std::string network_interface_id;  // ""
  std::string instance_id;           // ""
  std::string private_ip;            // ""
};
struct ec2_addresses {
  std::string request_id;
  std::vector<ec2_address> addresses;
};
ec2_addresses parse_describe_addresses(std::string_view xml);

struct ec2_zone {
  std::string zone_name;
  std::string zone_id;
  std::string state;  // available | information | impaired | unavailable | constrained
  std::vector<std::string> messages;
};
struct ec2_zones {
  std::string request_id;
  std::vector<ec2_zone> zones;
};
ec2_zones parse_describe_availability_zones(std::string_view xml);

// ---- SNS ----

// PublishResponse: <PublishResult><MessageId> and <ResponseMetadata><RequestId>.
struct sns_publish_result {
  std::string message_id;
  std::string request_id;
};
sns_publish_result parse_sns_publish(std::string_view xml);

// ---- Route 53 ----

struct r53_change_info {
  std::string id;      // without the "/change/" prefix
  std::string status;  // PENDING | INSYNC
};
// ChangeResourceRecordSetsResponse and GetChangeResponse.
r53_change_info parse_r53_change_info(std::string_view xml);

struct r53_record_set {
  std::string name;  // as sent, with the trailing dot; escapes such as \052 left as they are
  std::string type;
  std::optional<long long> ttl;  // absent for alias records
  std::vector<std::string> values;
  std::string set_identifier;
};
struct r53_record_sets {
  std::vector<r53_record_set> sets;
  bool truncated = false;
  std::string next_name;
  std::string next_type;
};
r53_record_sets parse_r53_list_record_sets(std::string_view xml);

// The request body of ChangeResourceRecordSets with one change (action CREATE, DELETE or
// UPSERT); the values are XML-escaped here.
std::string r53_change_batch(std::string_view action, const r53_record_set& set,
                             std::string_view comment = {});

}  // namespace tandem::ctl::cloud
