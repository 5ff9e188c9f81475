// SPDX-License-Identifier: Apache-2.0
// make_resource: the implementation for a resource's type, or why this build cannot run it;
// resource::start and stop, which turn anything a resource throws into a failure.
#include <memory>
#include <stdexcept>
#include <string>

#include "control/groups/resource.h"

namespace tandem::ctl::groups {

// Defined next to each implementation (resource_exec.cc, resource_filesystem.cc,
// resource_mirror.cc, resource_floating_ip.cc, resource_aws.cc,
// resource_dns.cc); only this file constructs them.
std::unique_ptr<resource> make_exec_resource(const config::resource_config& rc,
                                             const resource_env& env);
std::unique_ptr<resource> make_filesystem_resource(const config::resource_config& rc,
                                                   const resource_env& env);
std::unique_ptr<resource> make_mirror_resource(const config::resource_config& rc,
                                               const resource_env& env);
std::unique_ptr<resource> make_floating_ip_resource(const config::resource_config& rc,
                                                    const resource_env& env);
std::unique_ptr<resource> make_aws_vip_resource(const config::resource_config& rc,
                                                const resource_env& env);
std::unique_ptr<resource> make_aws_eip_resource(const config::resource_config& rc,
                                                const resource_env& env);
std::unique_ptr<resource> make_dns_resource(const config::resource_config& rc,
                                            const resource_env& env);

action_result resource::start(const action_context& ctx) {
  try {
    return do_start(ctx);
  } catch (const std::exception& e) {
    return {false, std::string("start: ") + e.what()};
  }
}

action_result resource::stop(const action_context& ctx) {
  try {
    return do_stop(ctx);
  } catch (const std::exception& e) {
    return {false, std::string("stop: ") + e.what()};
  }
}

std::unique_ptr<resource> make_resource(const config::resource_config& rc,
                                        const resource_env& env) {
  switch (rc.type) {
    case config::resource_type::exec:
      return make_exec_resource(rc, env);
    case config::resource_type::filesystem:
      return make_filesystem_resource(rc, env);
    case config::resource_type::mirror:
      return make_mirror_resource(rc, env);
    case config::resource_type::floating_ip:
      return make_floating_ip_resource(rc, env);
    case config::resource_type::aws_vip:
      return make_aws_vip_resource(rc, env);
    case config::resource_type::aws_eip:
      return make_aws_eip_resource(rc, env);
    case config::resource_type::aws_dns:
    case config::resource_type::gcp_dns:
    case config::resource_type::azure_dns:
      return make_dns_resource(rc, env);
  }
  throw std::runtime_error("resource " + rc.name + ": unknown type");
}

}  // namespace tandem::ctl::groups
