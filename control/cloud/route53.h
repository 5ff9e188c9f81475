// SPDX-License-Identifier: Apache-2.0
// The Route 53 operations the aws_dns resource uses, typed, over aws_api (signed for the global
// endpoint's home region, retried; PriorRequestNotComplete and Throttling count as throttling).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "control/cloud/aws_api.h"
#include "control/cloud/aws_xml.h"

namespace tandem::ctl::cloud {

// "www.example.com." in lower case, Route 53's \ooo escapes decoded: how two spellings of one
// name are compared.
std::string normalize_dns_name(std::string_view name);

class route53_client {
 public:
  using deadline = rest_clock::time_point;

  // `api` must outlive this client. zone ids may carry the "/hostedzone/" prefix.
  route53_client(aws_api& api, aws_service service) : api_(api), service_(std::move(service)) {}

  // The record set called `name` (any case, with or without the final dot) of `type`, or
  // nullopt (ListResourceRecordSets starts at name/type, so the answer is checked).
  std::optional<r53_record_set> find(std::string_view zone_id, std::string_view name,
                                     std::string_view type, deadline until);
  // One change (CREATE, UPSERT or DELETE) of one record set; its ChangeInfo.
  r53_change_info change(std::string_view zone_id, std::string_view action,
                         const r53_record_set& set, deadline until);
  r53_change_info get_change(std::string_view id, deadline until);
  // Polls GetChange until INSYNC: after 100 ms, then doubling to 1 s between polls (the
  // resource agents poll every 20 s), until `until`. Returns the polls it took; throws
  // cloud_error (timeout) when the change is still PENDING at the deadline.
  int wait_insync(std::string_view id, deadline until);

  [[nodiscard]] const aws_service& service() const noexcept { return service_; }

 private:
  static std::string zone_path(std::string_view zone_id);

  aws_api& api_;
  aws_service service_;
};

}  // namespace tandem::ctl::cloud
