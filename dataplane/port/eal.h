// SPDX-License-Identifier: Apache-2.0
// DPDK EAL start-up from configured arguments.
#pragma once

#include <string>
#include <vector>

#include "dataplane/port/eal_args.h"

namespace tandem::dp {

// Initialises the EAL once per process. Returns 0, or a negative errno with `error` set to
// DPDK's reason; a second call returns -EALREADY.
int eal_init(const std::vector<std::string>& args, std::string& error);
// Releases EAL resources at exit; harmless when eal_init() did not succeed.
void eal_cleanup();

}  // namespace tandem::dp
