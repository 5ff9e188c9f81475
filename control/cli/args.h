// SPDX-License-Identifier: Apache-2.0
// Argument parsing shared by tandemctl's leaf commands (Boost.ProgramOptions, no abbreviations).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "control/cli/commands.h"

namespace tandem::ctl::cli {

// Parses a leaf command's arguments. On --help prints the usage to stdout and sets *code to 0; on
// a bad command line prints the problem and the usage to stderr and sets *code to 2; either way
// returns nullopt.
std::optional<boost::program_options::variables_map> parse_args(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options,
    const boost::program_options::options_description& hidden,
    const boost::program_options::positional_options_description& positional,
    std::string_view usage, command_context& ctx, int* code);

// Sends `request` to tandemd (ctx.socket) and leaves the answer in `answer`. Returns exit_ok,
// exit_failed for a refusal (printed unless `quiet_refusal`) or exit_unavailable (printed).
int call_tandemd(const nlohmann::json& request, command_context& ctx, nlohmann::json& answer,
                 bool quiet_refusal = false);

}  // namespace tandem::ctl::cli
