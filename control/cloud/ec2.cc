// SPDX-License-Identifier: Apache-2.0
// Typed EC2 actions over aws_api.
#include "control/cloud/ec2.h"

namespace tandem::ctl::cloud {

template <typename Parse>
auto ec2_client::run(std::string_view action, const query_params& params, deadline until,
                     Parse parse) {
  api_reply r = api_.ec2(service_, action, params, until);
  try {
    return parse(r.body);
  } catch (const aws_xml_error& e) {
    throw cloud_error(cloud_failure::malformed, r.status, "", std::string(action) + ": " + e.what(),
                      r.request_id, r.attempts);
  }
}

std::vector<ec2_route_table> ec2_client::route_tables(std::string_view vpc_id, deadline until) {
  std::vector<ec2_route_table> all;
  std::string token;
  // A VPC has at most a few hundred tables; the bound only stops a server that loops its token.
  for (int page = 0; page < 1000; ++page) {
    query_params p = {{"Filter.1.Name", "vpc-id"}, {"Filter.1.Value.1", std::string(vpc_id)}};
    p.emplace_back("MaxResults", "100");
    if (!token.empty()) p.emplace_back("NextToken", token);
    ec2_route_tables t = run("DescribeRouteTables", p, until, parse_describe_route_tables);
    for (ec2_route_table& rt : t.tables)
      all.push_back(std::move(rt));
    if (t.next_token.empty() || t.next_token == token) return all;
    token = std::move(t.next_token);
  }
  return all;
}

std::string ec2_client::replace_route(std::string_view table, std::string_view cidr,
                                      std::string_view eni_id, deadline until) {
  return run("ReplaceRoute",
             {{"RouteTableId", std::string(table)},
              {"DestinationCidrBlock", std::string(cidr)},
              {"NetworkInterfaceId", std::string(eni_id)}},
             until, parse_ec2_ack);
}

ec2_vpc ec2_client::describe_vpc(std::string_view vpc_id, deadline until) {
  ec2_vpcs v = run("DescribeVpcs", {{"VpcId.1", std::string(vpc_id)}}, until, parse_describe_vpcs);
  for (ec2_vpc& vpc : v.vpcs)
    if (vpc.vpc_id == vpc_id) return std::move(vpc);
  // Some EC2-compatible clouds answer an empty set instead of InvalidVpcID.NotFound.
  throw cloud_error(cloud_failure::not_found, 200, "InvalidVpcID.NotFound",
                    "The vpc ID '" + std::string(vpc_id) + "' does not exist", v.request_id, 1);
}

ec2_association ec2_client::associate_address(std::string_view allocation_id,
                                              std::string_view eni_id, deadline until) {
  return run("AssociateAddress",
             {{"AllocationId", std::string(allocation_id)},
              {"NetworkInterfaceId", std::string(eni_id)},
              {"AllowReassociation", "true"}},
             until, parse_associate_address);
}

std::string ec2_client::disassociate_address(std::string_view association_id, deadline until) {
  return run("DisassociateAddress", {{"AssociationId", std::string(association_id)}}, until,
             parse_ec2_ack);
}

ec2_address ec2_client::describe_address(std::string_view allocation_id, deadline until) {
  ec2_addresses a = run("DescribeAddresses", {{"AllocationId.1", std::string(allocation_id)}},
                        until, parse_describe_addresses);
  for (ec2_address& addr : a.addresses)
    if (addr.allocation_id == allocation_id) return std::move(addr);
  throw cloud_error(cloud_failure::not_found, 200, "InvalidAllocationID.NotFound",
                    "The allocation ID '" + std::string(allocation_id) + "' does not exist",
                    a.request_id, 1);
}

ec2_zone ec2_client::describe_zone(std::string_view zone_name, deadline until) {
  ec2_zones z = run("DescribeAvailabilityZones", {{"ZoneName.1", std::string(zone_name)}}, until,
                    parse_describe_availability_zones);
  for (ec2_zone& zone : z.zones)
    if (zone.zone_name == zone_name) return std::move(zone);
  throw cloud_error(cloud_failure::not_found, 200, "InvalidParameterValue",
                    "The availability zone '" + std::string(zone_name) + "' is not in the answer",
                    z.request_id, 1);
}

}  // namespace tandem::ctl::cloud
