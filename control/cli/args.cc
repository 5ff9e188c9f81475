// SPDX-License-Identifier: Apache-2.0
// Argument parsing shared by tandemctl's leaf commands.
#include "control/cli/args.h"

#include <chrono>

#include "control/api/jsonl_socket.h"

namespace tandem::ctl::cli {

namespace po = boost::program_options;

std::optional<po::variables_map> parse_args(const std::vector<std::string>& args,
                                            const po::options_description& options,
                                            const po::options_description& hidden,
                                            const po::positional_options_description& positional,
                                            std::string_view usage, command_context& ctx,
                                            int* code) {
  po::options_description all;
  all.add(options).add(hidden);
  auto print_usage = [&](std::ostream& os) { os << "Usage: " << usage << "\n\n" << options; };
  po::variables_map vm;
  try {
    // No abbreviations: a script that says --nod means something else.
    const int style =
        po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(args).options(all).positional(positional).style(style).run(),
              vm);
    if (vm.contains("help")) {
      print_usage(ctx.out);
      *code = exit_ok;
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    ctx.err << "tandemctl: " << e.what() << "\n\n";
    print_usage(ctx.err);
    *code = exit_usage;
    return std::nullopt;
  }
  return vm;
}

int call_tandemd(const nlohmann::json& request, command_context& ctx, nlohmann::json& answer,
                 bool quiet_refusal) {
  try {
    api::jsonl_client client(ctx.socket, std::chrono::seconds(30));
    answer = client.call(request);
  } catch (const api::unavailable& e) {
    ctx.err << "tandemctl: tandemd is not running: " << e.what() << "\n";
    return exit_unavailable;
  } catch (const std::exception& e) {
    ctx.err << "tandemctl: " << ctx.socket << ": " << e.what() << "\n";
    return exit_unavailable;
  }
  if (!answer.value("ok", false)) {
    if (!quiet_refusal)
      ctx.err << "tandemctl: " << answer.value("error", std::string("refused")) << "\n";
    return exit_failed;
  }
  return exit_ok;
}

}  // namespace tandem::ctl::cli
