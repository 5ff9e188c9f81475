// SPDX-License-Identifier: Apache-2.0
// Route 53 over aws_api.
#include "control/cloud/route53.h"

#include <algorithm>
#include <cctype>
#include <thread>

namespace tandem::ctl::cloud {

namespace {

template <typename Parse>
auto parsed(const api_reply& r, std::string_view what, Parse parse) {
  try {
    return parse(r.body);
  } catch (const aws_xml_error& e) {
    throw cloud_error(cloud_failure::malformed, r.status, "", std::string(what) + ": " + e.what(),
                      r.request_id, r.attempts);
  }
}

}  // namespace

std::string normalize_dns_name(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '\\' && i + 3 < name.size() && std::isdigit(static_cast<unsigned char>(name[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(name[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(name[i + 3]))) {
      const int v = (name[i + 1] - '0') * 64 + (name[i + 2] - '0') * 8 + (name[i + 3] - '0');
      out.push_back(static_cast<char>(std::tolower(v & 0xff)));
      i += 3;
      continue;
    }
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (out.empty() || out.back() != '.') out.push_back('.');
  return out;
}

std::string route53_client::zone_path(std::string_view zone_id) {
  if (zone_id.starts_with("/hostedzone/")) zone_id.remove_prefix(12);
  return "/2013-04-01/hostedzone/" + uri_encode(zone_id);
}

std::optional<r53_record_set> route53_client::find(std::string_view zone_id, std::string_view name,
                                                   std::string_view type, deadline until) {
  const std::string want = normalize_dns_name(name);
  const api_reply r =
      api_.call(service_, "GET", zone_path(zone_id) + "/rrset",
                {{"name", want}, {"type", std::string(type)}, {"maxitems", "1"}}, "", "", until);
  const r53_record_sets sets = parsed(r, "ListResourceRecordSets", parse_r53_list_record_sets);
  for (const r53_record_set& s : sets.sets)
    if (normalize_dns_name(s.name) == want && s.type == type) return s;
  return std::nullopt;
}

r53_change_info route53_client::change(std::string_view zone_id, std::string_view action,
                                       const r53_record_set& set, deadline until) {
  std::string body;
  try {
    body = r53_change_batch(action, set, "tandem");
  } catch (const aws_xml_error& e) {
    throw cloud_error(cloud_failure::client, 0, "InvalidInput", e.what(), "", 0);
  }
  const api_reply r = api_.call(service_, "POST", zone_path(zone_id) + "/rrset/", {},
                                std::move(body), "application/xml", until);
  return parsed(r, "ChangeResourceRecordSets", parse_r53_change_info);
}

r53_change_info route53_client::get_change(std::string_view id, deadline until) {
  if (id.starts_with("/change/")) id.remove_prefix(8);
  const api_reply r =
      api_.call(service_, "GET", "/2013-04-01/change/" + uri_encode(id), {}, "", "", until);
  return parsed(r, "GetChange", parse_r53_change_info);
}

int route53_client::wait_insync(std::string_view id, deadline until) {
  std::chrono::milliseconds pause{100};
  for (int polls = 1;; ++polls) {
    if (rest_clock::now() + pause >= until)
      throw cloud_error(cloud_failure::timeout, 0, "",
                        "change " + std::string(id) + " still PENDING at the deadline", "",
                        polls - 1);
    std::this_thread::sleep_for(pause);
    if (get_change(id, until).status == "INSYNC") return polls;
    pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::milliseconds(1'000));
  }
}

}  // namespace tandem::ctl::cloud
