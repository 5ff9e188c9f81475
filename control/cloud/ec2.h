// SPDX-License-Identifier: Apache-2.0
// The EC2 actions tandem's AWS resources and monitors use, typed: each sends one Query-protocol
// action through aws_api (signed, retried) and parses the answer with aws_xml. A 2xx body that
// is not the expected document is an cloud_error of kind malformed carrying the request id.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "control/cloud/aws_api.h"
#include "control/cloud/aws_xml.h"

namespace tandem::ctl::cloud {

class ec2_client {
 public:
  using deadline = aws_api::clock::time_point;

  // `api` must outlive this client.
  ec2_client(aws_api& api, aws_service service) : api_(api), service_(std::move(service)) {}

  // Every route table of the VPC (DescribeRouteTables filtered by vpc-id, all pages).
  std::vector<ec2_route_table> route_tables(std::string_view vpc_id, deadline until);
  // ReplaceRoute of `cidr` in `table` to the network interface; returns the request id.
  std::string replace_route(std::string_view table, std::string_view cidr, std::string_view eni_id,
                            deadline until);
  // DescribeVpcs for one VPC; cloud_error not_found (InvalidVpcID.NotFound) when it does not exist.
  ec2_vpc describe_vpc(std::string_view vpc_id, deadline until);
  // AssociateAddress of the allocation with the network interface (AllowReassociation=true:
  // taking the address over from the failed node is the point).
  ec2_association associate_address(std::string_view allocation_id, std::string_view eni_id,
                                    deadline until);
  // DisassociateAddress; returns the request id.
  std::string disassociate_address(std::string_view association_id, deadline until);
  // DescribeAddresses for one allocation.
  ec2_address describe_address(std::string_view allocation_id, deadline until);
  // DescribeAvailabilityZones for one zone by name.
  ec2_zone describe_zone(std::string_view zone_name, deadline until);

  [[nodiscard]] const aws_service& service() const noexcept { return service_; }

 private:
  template <typename Parse>
  auto run(std::string_view action, const query_params& params, deadline until, Parse parse);

  aws_api& api_;
  aws_service service_;
};

}  // namespace tandem::ctl::cloud
