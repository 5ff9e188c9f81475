// SPDX-License-Identifier: Apache-2.0
// AWS credentials and region: the environment, the shared files and the instance role through
// IMDSv2, in the order and with the file dialect the AWS SDKs use.
#include "control/cloud/aws_credentials.h"

#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "control/cloud/cloud_json.h"

namespace tandem::ctl::cloud {
namespace {

using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

constexpr std::string_view default_imds_endpoint = "http://169.254.169.254";
constexpr std::string_view role_list_path = "meta-data/iam/security-credentials/";
constexpr std::string_view region_path = "meta-data/placement/region";
// Instance-role credentials are fetched again this long before their Expiration (the instance
// has new ones at least five minutes before the old ones expire).
constexpr auto role_refresh_before = 5min;
// What get() promises: credentials usable for at least this long.
constexpr auto min_validity = 1min;
constexpr std::chrono::seconds max_token_ttl{21'600};

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back()))
    s.remove_suffix(1);
  return s;
}

std::string trim(std::string_view s) {
  return std::string(trim_view(s));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// The variable's value; an empty value counts as unset, as it does for the SDKs.
std::optional<std::string> env_value(const aws_environment& env, const char* name) {
  std::optional<std::string> v = env.getenv(name);
  if (v && v->empty()) return std::nullopt;
  return v;
}

bool metadata_disabled(const aws_environment& env) {
  const std::optional<std::string> v = env_value(env, "AWS_EC2_METADATA_DISABLED");
  return v && lower(trim(*v)) == "true";
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// ---- IMDS exchanges ----

// Worth another try: the metadata service is throttling or briefly unwell, or did not answer.
bool retryable(const http_reply& r) {
  return r.status == 0 || r.status == 429 || (r.status >= 500 && r.status <= 599);
}

// Sends `call` up to `attempts` times while the answer is worth retrying, waiting 50 ms, 100 ms,
// ... in between (IMDS asks for exponential backoff). Returns the last reply.
http_reply send_with_retries(http_client& http, const http_call& call, int attempts) {
  auto pause = 50ms;
  for (int attempt = 1;; ++attempt) {
    http_reply reply = http.send(call);
    if (!retryable(reply) || attempt >= attempts) return reply;
    std::this_thread::sleep_for(pause);
    pause *= 2;
  }
}

// The body is left out: IMDS error bodies are HTML pages that add nothing to the status.
std::string imds_failure(const std::string& endpoint, std::string_view what,
                         const http_reply& reply) {
  if (reply.status == 0) {
    std::string why = reply.error;
    if (why.empty()) why = reply.timed_out ? "timed out" : "no reply";
    return "instance metadata: no answer from " + endpoint + ": " + why;
  }
  return "instance metadata: " + std::string(what) + ": HTTP " + std::to_string(reply.status);
}

// ---- shared files ----

// "[profile name]" in a config file; nullopt for a section that names no profile there.
std::optional<std::string> section_profile(const std::string& section, bool config_file) {
  if (!config_file || section == "default") return section;
  constexpr std::string_view prefix = "profile";
  if (section.size() > prefix.size() && section.starts_with(prefix) &&
      is_blank(section[prefix.size()])) {
    std::string name = trim(std::string_view(section).substr(prefix.size()));
    if (!name.empty()) return name;
  }
  return std::nullopt;  // sso-session, services, a misspelt "[profilex]": not a profile
}

// A value without its inline comment: a # or ; that follows whitespace starts one (as in the
// SDKs; "a#b" keeps its #).
std::string_view strip_inline_comment(std::string_view value) {
  for (size_t i = 1; i < value.size(); ++i) {
    if ((value[i] == '#' || value[i] == ';') && (value[i - 1] == ' ' || value[i - 1] == '\t')) {
      return value.substr(0, i);
    }
  }
  return value;
}

struct shared_file {
  std::string path;
  std::optional<aws_profiles> profiles;  // nullopt: the file does not exist
};

// The user's home directory: HOME, else the password database (a system service may run
// without HOME), else "" when neither has one.
std::string home_dir(const aws_environment& env) {
  if (std::optional<std::string> home = env_value(env, "HOME")) return *home;
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<size_t>(size) : 16'384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr &&
      found->pw_dir != nullptr) {
    return found->pw_dir;
  }
  return "";
}

std::string shared_file_path(const aws_environment& env, const char* variable, const char* name) {
  if (std::optional<std::string> p = env_value(env, variable)) return *p;
  const std::string home = home_dir(env);
  return (home.empty() ? std::string("$HOME") : home) + "/.aws/" + name;
}

// Reads and parses one shared file. Throws std::runtime_error naming the file (and the line)
// when it exists but cannot be read or parsed.
shared_file load_shared_file(std::string path, bool config_file) {
  namespace fs = std::filesystem;
  shared_file f{std::move(path), std::nullopt};
  std::error_code ec;
  const fs::file_status st = fs::status(f.path, ec);
  if (st.type() == fs::file_type::not_found) return f;
  if (ec) throw std::runtime_error(f.path + ": " + ec.message());
  if (st.type() != fs::file_type::regular) throw std::runtime_error(f.path + ": not a file");
  std::ifstream in(f.path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) throw std::runtime_error(f.path + ": cannot be read");
  try {
    f.profiles = parse_aws_ini(text.str(), config_file);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(f.path + " " + e.what());
  }
  return f;
}

std::string shown(const shared_file& f) {
  return f.profiles ? f.path : f.path + " (missing)";
}

const std::string* find_key(const std::map<std::string, std::string>& keys, const char* key) {
  auto it = keys.find(key);
  return it == keys.end() || it->second.empty() ? nullptr : &it->second;
}

std::string profile_name(const aws_environment& env) {
  return env_value(env, "AWS_PROFILE").value_or("default");
}

// ---- credential sources ----

// Environment credentials; nullopt when AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are both
// unset. One without the other is an error rather than a reason to look further: whoever set it
// meant these credentials, and the next source would silently be someone else's (botocore
// raises PartialCredentialsError for the same reason).
std::optional<credentials> environment_credentials(const aws_environment& env) {
  std::optional<std::string> id = env_value(env, "AWS_ACCESS_KEY_ID");
  std::optional<std::string> secret = env_value(env, "AWS_SECRET_ACCESS_KEY");
  if (!id && !secret) return std::nullopt;
  if (!secret) {
    throw std::runtime_error(
        "AWS credentials: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY "
        "is not");
  }
  if (!id) {
    throw std::runtime_error(
        "AWS credentials: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID "
        "is not");
  }
  return credentials{std::move(*id), std::move(*secret),
                     env_value(env, "AWS_SESSION_TOKEN").value_or("")};
}

struct profile_result {
  std::optional<credentials> creds;
  std::string file;    // where the keys were, with creds
  std::string reason;  // why there are none, without
};

// The keys of the profile AWS_PROFILE (else default): the credentials file first, then the
// config file. A profile with only half a key pair, a file that cannot be parsed, or an
// AWS_PROFILE naming a profile neither file has are errors; a default profile without keys is
// not (on an instance, [default] often holds only the region and the role supplies the keys).
profile_result profile_credentials(const aws_environment& env) {
  const std::string name = profile_name(env);
  const bool chosen = env_value(env, "AWS_PROFILE").has_value();
  const shared_file files[] = {
      load_shared_file(shared_file_path(env, "AWS_SHARED_CREDENTIALS_FILE", "credentials"), false),
      load_shared_file(shared_file_path(env, "AWS_CONFIG_FILE", "config"), true)};
  bool exists = false;
  for (const shared_file& f : files) {
    if (!f.profiles) continue;
    auto it = f.profiles->find(name);
    if (it == f.profiles->end()) continue;
    exists = true;
    const std::string* id = find_key(it->second, "aws_access_key_id");
    const std::string* secret = find_key(it->second, "aws_secret_access_key");
    if (id == nullptr && secret == nullptr) continue;
    if (secret == nullptr) {
      throw std::runtime_error("AWS credentials: profile " + name + " in " + f.path +
                               " has aws_access_key_id but no aws_secret_access_key");
    }
    if (id == nullptr) {
      throw std::runtime_error("AWS credentials: profile " + name + " in " + f.path +
                               " has aws_secret_access_key but no aws_access_key_id");
    }
    const std::string* token = find_key(it->second, "aws_session_token");
    return {credentials{*id, *secret, token != nullptr ? *token : ""}, f.path, ""};
  }
  const std::string where = shown(files[0]) + ", " + shown(files[1]);
  if (chosen && !exists) {
    throw std::runtime_error("AWS credentials: AWS_PROFILE is " + name +
                             " but there is no profile " + name + " in " + where);
  }
  return {std::nullopt, "", "profile " + name + " has none in " + where};
}

// For messages: the time as the metadata service writes it (without its fraction).
std::string utc_timestamp(sys_clock::time_point t) {
  const std::time_t secs = sys_clock::to_time_t(t);
  std::tm tm{};
  char text[32] = "?";
  if (::gmtime_r(&secs, &tm) != nullptr)
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

struct role_credentials {
  std::string role;
  credentials creds;
  sys_clock::time_point expiry;
};

// The instance role's current credentials. Throws std::runtime_error starting with "instance
// metadata: " when there is no role or the service's answer is not usable.
role_credentials fetch_role_credentials(imds_client& imds, sys_clock::time_point now) {
  const std::string list = imds.get(role_list_path);
  const std::string role = trim(list.substr(0, list.find('\n')));
  if (role.empty()) throw std::runtime_error("instance metadata: no instance role attached");
  const std::string body = imds.get(std::string(role_list_path) + role);
  const std::string what = "instance metadata: credentials of role " + role;
  imds_role_credentials parsed;
  try {
    parsed = parse_imds_role_credentials(body);
  } catch (const cloud_json_error& e) {
    // The message names the document, which `what` already does better (with the role).
    std::string_view why = e.what();
    constexpr std::string_view document = "IMDS role credentials: ";
    if (why.starts_with(document)) why.remove_prefix(document.size());
    throw std::runtime_error(what + ": " + std::string(why));
  }
  if (parsed.expiration - now < min_validity) {
    throw std::runtime_error(what + ": they expire at " + utc_timestamp(parsed.expiration) +
                             ", in less than a minute");
  }
  return role_credentials{role,
                          credentials{std::move(parsed.access_key_id),
                                      std::move(parsed.secret_access_key), std::move(parsed.token)},
                          parsed.expiration};
}

class default_chain final : public aws_credential_source {
 public:
  default_chain(aws_environment env, imds_client* imds) : env_(std::move(env)), imds_(imds) {}

  credentials get() override {
    switch (source_) {
      case source::none:
        return resolve();
      case source::environment:
      case source::profile:
        // The keys do not change by themselves; read them again only when AWS refused them
        // (someone may have rotated the profile's keys in the meantime).
        if (stale_) fetch_static();
        return creds_;
      case source::instance_role:
        return instance_role_credentials();
    }
    return creds_;
  }

  void invalidate() override { stale_ = true; }

  [[nodiscard]] std::string describe() const override {
    switch (source_) {
      case source::none:
        return "the default chain (environment, profile, instance role)";
      case source::environment:
        return "environment";
      case source::profile:
        return "profile " + profile_ + " (" + file_ + ")";
      case source::instance_role:
        return "instance role " + role_ + " (IMDSv2)";
    }
    return "";
  }

 private:
  enum class source { none, environment, profile, instance_role };

  credentials resolve() {
    std::vector<std::string> tried;
    if (std::optional<credentials> c = environment_credentials(env_)) {
      return choose(source::environment, std::move(*c));
    }
    tried.emplace_back("AWS_ACCESS_KEY_ID is not set");
    profile_result p = profile_credentials(env_);
    if (p.creds) {
      profile_ = profile_name(env_);
      file_ = std::move(p.file);
      return choose(source::profile, std::move(*p.creds));
    }
    tried.push_back(std::move(p.reason));
    if (imds_ == nullptr) {
      tried.emplace_back("instance metadata: not used");
    } else if (metadata_disabled(env_)) {
      tried.emplace_back("instance metadata: AWS_EC2_METADATA_DISABLED is true");
    } else {
      try {
        adopt(fetch_role_credentials(*imds_, env_.now()));
        return choose(source::instance_role, creds_);
      } catch (const std::runtime_error& e) {
        tried.emplace_back(e.what());
      }
    }
    throw std::runtime_error("no AWS credentials: " + join(tried, ", "));
  }

  credentials choose(source s, credentials c) {
    source_ = s;
    creds_ = std::move(c);
    stale_ = false;
    return creds_;
  }

  void fetch_static() {
    if (source_ == source::environment) {
      std::optional<credentials> c = environment_credentials(env_);
      if (!c) throw std::runtime_error("AWS credentials: AWS_ACCESS_KEY_ID is no longer set");
      creds_ = std::move(*c);
    } else {
      profile_result p = profile_credentials(env_);
      if (!p.creds) throw std::runtime_error("AWS credentials: " + p.reason);
      profile_ = profile_name(env_);
      file_ = std::move(p.file);
      creds_ = std::move(*p.creds);
    }
    stale_ = false;
  }

  credentials instance_role_credentials() {
    const sys_clock::time_point now = env_.now();
    if (!stale_ && now < expiry_ - role_refresh_before) return creds_;
    try {
      adopt(fetch_role_credentials(*imds_, now));
    } catch (const std::runtime_error&) {
      // The metadata service may be throttling us: credentials that are still good for a while
      // are better than none, and the next get() tries again.
      if (stale_ || now >= expiry_ - min_validity) throw;
    }
    return creds_;
  }

  void adopt(role_credentials r) {
    role_ = std::move(r.role);
    creds_ = std::move(r.creds);
    expiry_ = r.expiry;
    stale_ = false;
  }

  aws_environment env_;
  imds_client* imds_;
  source source_ = source::none;
  credentials creds_;
  bool stale_ = false;              // invalidate() was called
  std::string profile_, file_;      // source::profile
  std::string role_;                // source::instance_role
  sys_clock::time_point expiry_{};  // source::instance_role
};

}  // namespace

aws_environment aws_environment::process() {
  return aws_environment{[](const char* name) -> std::optional<std::string> {
                           const char* v = std::getenv(name);
                           if (v == nullptr) return std::nullopt;
                           return std::string(v);
                         },
                         [] { return sys_clock::now(); }};
}

// ---- IMDSv2 ----

imds_client::imds_client(http_client& http, imds_settings settings, aws_environment env)
    : http_(http), settings_(std::move(settings)), env_(std::move(env)) {
  while (!settings_.endpoint.empty() && settings_.endpoint.back() == '/') {
    settings_.endpoint.pop_back();
  }
  if (settings_.endpoint.empty()) settings_.endpoint = default_imds_endpoint;
  if (settings_.token_ttl < std::chrono::seconds{1} || settings_.token_ttl > max_token_ttl) {
    throw std::invalid_argument("instance metadata: token ttl must be 1..21600 seconds");
  }
  if (settings_.attempts < 1)
    throw std::invalid_argument("instance metadata: attempts must be >= 1");
}

const std::string& imds_client::token() {
  const sys_clock::time_point now = env_.now();
  if (!token_.empty() && now + settings_.renew_before < token_expiry_) return token_;
  token_.clear();
  const http_call call{
      "PUT",
      settings_.endpoint + "/latest/api/token",
      {{"X-aws-ec2-metadata-token-ttl-seconds", std::to_string(settings_.token_ttl.count())}},
      "",
      settings_.timeout};
  const http_reply reply = send_with_retries(http_, call, settings_.attempts);
  if (reply.status != 200) {
    throw std::runtime_error(imds_failure(settings_.endpoint, "PUT api/token", reply));
  }
  std::string token = trim(reply.body);
  if (token.empty()) throw std::runtime_error("instance metadata: PUT api/token: empty token");
  token_ = std::move(token);
  // Counted from before the request, so the token never outlives what we believe.
  token_expiry_ = now + settings_.token_ttl;
  return token_;
}

std::string imds_client::get(std::string_view path) {
  while (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  const std::string what = "GET " + std::string(path);
  http_call call{
      "GET", settings_.endpoint + "/latest/" + std::string(path), {}, "", settings_.timeout};
  for (bool renewed = false;; renewed = true) {
    call.headers = {{"X-aws-ec2-metadata-token", token()}};
    http_reply reply = send_with_retries(http_, call, settings_.attempts);
    if (reply.status == 200) return std::move(reply.body);
    if (reply.status == 401) {
      // The token expired early or the service restarted: the next one is fetched anew.
      token_.clear();
      if (!renewed) continue;
    }
    throw std::runtime_error(imds_failure(settings_.endpoint, what, reply));
  }
}

imds_settings imds_settings_from(const aws_environment& env) {
  imds_settings s;
  s.endpoint = env_value(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
                   .value_or(std::string(default_imds_endpoint));
  while (!s.endpoint.empty() && s.endpoint.back() == '/')
    s.endpoint.pop_back();
  return s;
}

// ---- shared files ----

// Comments: a line whose first non-blank character is # or ; and, after a value or a section
// header, a # or ; preceded by whitespace (a # inside a value, "a#b", is part of it). Values
// are trimmed and may be empty. A line starting with whitespace right after a property continues
// it: under an empty value ("s3 =") it is a nested setting and skipped, otherwise it is added to
// the value after a newline, as the SDKs do. A later duplicate key or section adds to or
// replaces the earlier one. A UTF-8 byte-order mark and CR line ends are tolerated.
aws_profiles parse_aws_ini(std::string_view text, bool config_file) {
  aws_profiles out;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  bool in_section = false;
  std::map<std::string, std::string>* section = nullptr;  // nullptr: a section left out
  // What an indented line continues: nothing, the value of the property above, or its nested
  // settings.
  enum class continues { nothing, value, nested } continuation = continues::nothing;
  std::string* last_value = nullptr;  // the property above; nullptr in a section left out
  for (size_t line_no = 1; !text.empty(); ++line_no) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    auto malformed = [&](const std::string& why) {
      // The line itself is not quoted: it may hold a secret.
      return std::invalid_argument("line " + std::to_string(line_no) + ": " + why);
    };
    const std::string_view t = trim_view(line);
    if (t.empty() || t.front() == '#' || t.front() == ';') continue;

    if (t.front() == '[') {
      const size_t close = t.find(']');
      if (close == std::string_view::npos) throw malformed("section header without ']'");
      const std::string_view rest = trim_view(t.substr(close + 1));
      if (!rest.empty() && rest.front() != '#' && rest.front() != ';') {
        throw malformed("text after the section header");
      }
      const std::string name = trim(t.substr(1, close - 1));
      if (name.empty()) throw malformed("empty section name");
      in_section = true;
      continuation = continues::nothing;
      const std::optional<std::string> profile = section_profile(name, config_file);
      section = profile ? &out[*profile] : nullptr;
      continue;
    }

    if (is_blank(line.front()) && continuation != continues::nothing) {
      if (continuation == continues::value && last_value != nullptr) {
        *last_value += '\n';
        *last_value += t;
      }
      continue;
    }
    const size_t eq = t.find('=');
    if (eq == std::string_view::npos) throw malformed("expected [section] or key = value");
    const std::string key = lower(trim(t.substr(0, eq)));
    if (key.empty()) throw malformed("no key before '='");
    if (!in_section) throw malformed("key = value before the first [section]");
    std::string value = trim(strip_inline_comment(t.substr(eq + 1)));
    continuation = value.empty() ? continues::nested : continues::value;
    last_value = nullptr;
    if (section != nullptr) {
      last_value = &(*section)[key];
      *last_value = std::move(value);
    }
  }
  return out;
}

// ---- credentials ----

std::unique_ptr<aws_credential_source> make_default_credentials(aws_environment env,
                                                                imds_client* imds) {
  return std::make_unique<default_chain>(std::move(env), imds);
}

std::string resolve_region(std::string_view configured, const aws_environment& env,
                           imds_client* imds) {
  if (!configured.empty()) return std::string(configured);
  for (const char* variable : {"AWS_REGION", "AWS_DEFAULT_REGION"}) {
    if (std::optional<std::string> v = env_value(env, variable)) return *v;
  }
  std::vector<std::string> tried{"none configured",
                                 "AWS_REGION and AWS_DEFAULT_REGION are not set"};

  const std::string name = profile_name(env);
  const shared_file config =
      load_shared_file(shared_file_path(env, "AWS_CONFIG_FILE", "config"), true);
  if (config.profiles) {
    if (auto p = config.profiles->find(name); p != config.profiles->end()) {
      if (const std::string* region = find_key(p->second, "region")) return *region;
    }
  }
  tried.push_back("profile " + name + " has no region in " + shown(config));

  if (imds == nullptr) {
    tried.emplace_back("instance metadata: not used");
  } else if (metadata_disabled(env)) {
    tried.emplace_back("instance metadata: AWS_EC2_METADATA_DISABLED is true");
  } else {
    try {
      std::string region = trim(imds->get(region_path));
      if (!region.empty()) return region;
      tried.emplace_back("instance metadata: GET " + std::string(region_path) + ": empty");
    } catch (const std::runtime_error& e) {
      tried.emplace_back(e.what());
    }
  }
  throw std::runtime_error("no AWS region: " + join(tried, ", "));
}

}  // namespace tandem::ctl::cloud
