// SPDX-License-Identifier: Apache-2.0
// AWS credentials and region: the IMDSv2 client against a scripted metadata service, the shared
// file dialect, the default chain and the region lookup, all with a fake environment and clock.
#include "control/cloud/aws_credentials.h"

#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace tandem::ctl::cloud {
namespace {

using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* imds = "http://169.254.169.254";
const std::string token_url = std::string(imds) + "/latest/api/token";
const std::string roles_url = std::string(imds) + "/latest/meta-data/iam/security-credentials/";
const std::string region_url = std::string(imds) + "/latest/meta-data/placement/region";

// A metadata service that answers from a script: each call must be the next expected method
// and URL, and gets that step's reply. Every call is recorded with its headers.
class scripted_http final : public http_client {
 public:
  void expect(std::string method, std::string url, long status, std::string body = "") {
    http_reply reply;
    reply.status = status;
    reply.body = std::move(body);
    script_.push_back({std::move(method), std::move(url), std::move(reply)});
  }
  void expect_no_answer(std::string method, std::string url, std::string error) {
    http_reply reply;
    reply.error = std::move(error);
    reply.timed_out = true;
    script_.push_back({std::move(method), std::move(url), std::move(reply)});
  }

  http_reply send(const http_call& call) override {
    calls.push_back(call);
    if (script_.empty()) {
      ADD_FAILURE() << "unexpected " << call.method << " " << call.url;
      http_reply none;
      none.error = "not in the script";
      return none;
    }
    step next = std::move(script_.front());
    script_.pop_front();
    EXPECT_EQ(call.method, next.method);
    EXPECT_EQ(call.url, next.url);
    return next.reply;
  }

  [[nodiscard]] bool done() const { return script_.empty(); }

  std::vector<http_call> calls;

 private:
  struct step {
    std::string method, url;
    http_reply reply;
  };
  std::deque<step> script_;
};

std::string header(const http_call& call, std::string_view name) {
  for (const auto& [n, v] : call.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

// The environment variables and the clock the code under test sees.
struct fake_world {
  std::map<std::string, std::string> vars;
  sys_clock::time_point now = sys_clock::from_time_t(1'700'000'000);  // 2023-11-14T22:13:20Z

  aws_environment env() {
    return aws_environment{[this](const char* name) -> std::optional<std::string> {
                             auto it = vars.find(name);
                             if (it == vars.end()) return std::nullopt;
                             return it->second;
                           },
                           [this] { return now; }};
  }
};

std::string role_json(std::string_view key_id, std::string_view expiration,
                      std::string_view code = "Success") {
  return std::string(R"({
  "Code" : ")") +
         std::string(code) +
         R"(",
  "LastUpdated" : "2023-11-14T21:00:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : ")" +
         std::string(key_id) + R"(",
  "SecretAccessKey" : "secret-)" +
         std::string(key_id) + R"(",
  "Token" : "token-)" +
         std::string(key_id) +
         R"(",
  "Expiration" : ")" +
         std::string(expiration) + R"("
})";
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

// ---- IMDSv2 client ----

class imds_test : public ::testing::Test {
 protected:
  imds_client client(imds_settings s = {}) { return imds_client(http, std::move(s), world.env()); }

  scripted_http http;
  fake_world world;
};

TEST_F(imds_test, token_fetched_once_and_reused) {
  http.expect("PUT", token_url, 200, "tok-1");
  http.expect("GET", region_url, 200, "eu-west-1");
  http.expect("GET", std::string(imds) + "/latest/meta-data/instance-id", 200, "i-0abc");
  imds_client c = client();
  EXPECT_EQ(c.endpoint(), imds);
  EXPECT_EQ(c.get("meta-data/placement/region"), "eu-west-1");
  world.now += 1h;
  EXPECT_EQ(c.get("/meta-data/instance-id"), "i-0abc");
  ASSERT_TRUE(http.done());
  ASSERT_EQ(http.calls.size(), 3u);
  EXPECT_EQ(header(http.calls[0], "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_EQ(header(http.calls[0], "X-aws-ec2-metadata-token"), "<absent>");
  EXPECT_EQ(header(http.calls[1], "X-aws-ec2-metadata-token"), "tok-1");
  EXPECT_EQ(header(http.calls[2], "X-aws-ec2-metadata-token"), "tok-1");
  for (const http_call& call : http.calls) {
    EXPECT_EQ(call.total_timeout, std::chrono::milliseconds(1'000));
  }
}

TEST_F(imds_test, token_renewed_when_little_of_its_ttl_is_left) {
  imds_settings s;
  s.token_ttl = 600s;
  s.renew_before = 60s;
  s.timeout = 250ms;
  http.expect("PUT", token_url, 200, "tok-1\n");
  http.expect("GET", region_url, 200, "r1");
  http.expect("GET", region_url, 200, "r2");
  http.expect("PUT", token_url, 200, "tok-2");
  http.expect("GET", region_url, 200, "r3");
  imds_client c = client(s);
  EXPECT_EQ(c.get("meta-data/placement/region"), "r1");
  world.now += 539s;  // 61 s left
  EXPECT_EQ(c.get("meta-data/placement/region"), "r2");
  world.now += 2s;  // 59 s left
  EXPECT_EQ(c.get("meta-data/placement/region"), "r3");
  ASSERT_TRUE(http.done());
  EXPECT_EQ(header(http.calls[0], "X-aws-ec2-metadata-token-ttl-seconds"), "600");
  EXPECT_EQ(header(http.calls[1], "X-aws-ec2-metadata-token"), "tok-1");
  EXPECT_EQ(header(http.calls[2], "X-aws-ec2-metadata-token"), "tok-1");
  EXPECT_EQ(header(http.calls[4], "X-aws-ec2-metadata-token"), "tok-2");
  EXPECT_EQ(http.calls[4].total_timeout, std::chrono::milliseconds(250));
}

TEST_F(imds_test, unauthorized_fetches_one_new_token_and_retries) {
  http.expect("PUT", token_url, 200, "tok-1");
  http.expect("GET", region_url, 401, "<html><title>401 - Unauthorized</title></html>");
  http.expect("PUT", token_url, 200, "tok-2");
  http.expect("GET", region_url, 200, "us-east-2");
  imds_client c = client();
  EXPECT_EQ(c.get("meta-data/placement/region"), "us-east-2");
  ASSERT_TRUE(http.done());
  EXPECT_EQ(header(http.calls[3], "X-aws-ec2-metadata-token"), "tok-2");
}

TEST_F(imds_test, second_unauthorized_is_an_error_and_the_token_is_dropped) {
  http.expect("PUT", token_url, 200, "tok-1");
  http.expect("GET", region_url, 401, "<html>401</html>");
  http.expect("PUT", token_url, 200, "tok-2");
  http.expect("GET", region_url, 401, "<html>401</html>");
  imds_client c = client();
  EXPECT_EQ(error_of([&] { c.get("meta-data/placement/region"); }),
            "instance metadata: GET meta-data/placement/region: HTTP 401");
  ASSERT_TRUE(http.done());
  // The refused token is not offered again.
  http.expect("PUT", token_url, 200, "tok-3");
  http.expect("GET", region_url, 200, "ok");
  EXPECT_EQ(c.get("meta-data/placement/region"), "ok");
  EXPECT_EQ(header(http.calls.back(), "X-aws-ec2-metadata-token"), "tok-3");
}

TEST_F(imds_test, unavailable_twice_then_ok_with_backoff) {
  http.expect("PUT", token_url, 200, "tok-1");
  http.expect("GET", region_url, 503, "<html>503</html>");
  http.expect("GET", region_url, 503, "<html>503</html>");
  http.expect("GET", region_url, 200, "ap-south-1");
  imds_client c = client();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.get("meta-data/placement/region"), "ap-south-1");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);  // 50 ms + 100 ms
  EXPECT_TRUE(http.done());
}

TEST_F(imds_test, throttling_retried_until_attempts_run_out) {
  http.expect("PUT", token_url, 200, "tok-1");
  http.expect("GET", region_url, 429, "");
  http.expect("GET", region_url, 500, "");
  http.expect("GET", region_url, 503, "");
  imds_client c = client();
  EXPECT_EQ(error_of([&] { c.get("meta-data/placement/region"); }),
            "instance metadata: GET meta-data/placement/region: HTTP 503");
  EXPECT_TRUE(http.done());
}

TEST_F(imds_test, not_found_is_not_retried_and_names_the_path) {
  http.expect("PUT", token_url, 200, "tok-1");
  http.expect("GET", roles_url, 404,
              "<?xml version=\"1.0\"?><html><head><title>404 - Not Found</title></head></html>");
  imds_client c = client();
  const std::string e = error_of([&] { c.get("meta-data/iam/security-credentials/"); });
  EXPECT_EQ(e, "instance metadata: GET meta-data/iam/security-credentials/: HTTP 404");
  EXPECT_EQ(http.calls.size(), 2u);
}

TEST_F(imds_test, token_refused_is_not_retried) {
  http.expect("PUT", token_url, 403, "<html>403 - Forbidden</html>");
  imds_client c = client();
  EXPECT_EQ(error_of([&] { c.get("meta-data/placement/region"); }),
            "instance metadata: PUT api/token: HTTP 403");
  http.expect("PUT", token_url, 400, "<html>400 - Missing or Invalid Parameters</html>");
  EXPECT_EQ(error_of([&] { c.get("meta-data/placement/region"); }),
            "instance metadata: PUT api/token: HTTP 400");
  EXPECT_EQ(http.calls.size(), 2u);
}

TEST_F(imds_test, no_answer_names_the_endpoint_after_every_attempt) {
  for (int i = 0; i < 3; ++i)
    http.expect_no_answer("PUT", token_url, "Connection timed out");
  imds_client c = client();
  EXPECT_EQ(error_of([&] { c.get("meta-data/placement/region"); }),
            "instance metadata: no answer from http://169.254.169.254: Connection timed out");
  EXPECT_TRUE(http.done());
}

TEST_F(imds_test, endpoint_from_the_environment) {
  world.vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://[fd00:ec2::254]/";
  const imds_settings s = imds_settings_from(world.env());
  EXPECT_EQ(s.endpoint, "http://[fd00:ec2::254]");
  http.expect("PUT", "http://[fd00:ec2::254]/latest/api/token", 200, "tok");
  http.expect("GET", "http://[fd00:ec2::254]/latest/meta-data/placement/region", 200, "x");
  imds_client c = client(s);
  EXPECT_EQ(c.get("meta-data/placement/region"), "x");

  world.vars.clear();
  EXPECT_EQ(imds_settings_from(world.env()).endpoint, "http://169.254.169.254");
}

// ---- shared files ----

TEST(aws_ini, sections_keys_values_and_comments) {
  const aws_profiles p = parse_aws_ini(
      "\xEF\xBB\xBF# a comment\r\n"
      "; another\r\n"
      "[default]\r\n"
      "aws_access_key_id=AKID1\r\n"
      "AWS_Secret_Access_Key   =   s3cr/et+key  \r\n"
      "\r\n"
      "empty =\r\n"
      "[  prod  ] ; the production account\r\n"
      "region = eu-west-1 # inline comment\r\n"
      "odd = a#b;c\r\n"
      "region = eu-central-1\r\n"
      "\t# indented comment\r\n"
      "[default]\r\n"
      "aws_session_token = tok\r\n",
      false);
  ASSERT_EQ(p.size(), 2u);
  const auto& d = p.at("default");
  EXPECT_EQ(d.at("aws_access_key_id"), "AKID1");
  EXPECT_EQ(d.at("aws_secret_access_key"), "s3cr/et+key");
  EXPECT_EQ(d.at("empty"), "");
  EXPECT_EQ(d.at("aws_session_token"), "tok");  // a repeated section adds to the first
  const auto& prod = p.at("prod");
  EXPECT_EQ(prod.at("region"), "eu-central-1");  // the last of duplicate keys wins
  EXPECT_EQ(prod.at("odd"), "a#b;c");
}

TEST(aws_ini, config_file_profiles_and_nested_settings) {
  const aws_profiles p = parse_aws_ini(
      "[default]\n"
      "region = us-east-1\n"
      "s3 =\n"
      "  max_concurrent_requests = 20\n"
      "  addressing_style = path\n"
      "output = json\n"
      "[profile   prod ]\n"
      "region = eu-west-1\n"
      "[prod-plain]\n"
      "region = nowhere\n"
      "[sso-session my-sso]\n"
      "sso_region = us-east-1\n"
      "[services dev]\n"
      "ec2 =\n"
      "  endpoint_url = http://localhost\n"
      "[profilex]\n"
      "region = nowhere\n",
      true);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.at("default").at("region"), "us-east-1");
  EXPECT_EQ(p.at("default").at("s3"), "");
  EXPECT_EQ(p.at("default").at("output"), "json");
  EXPECT_FALSE(p.at("default").contains("max_concurrent_requests"));

  // An indented line under a value continues it, as the SDKs read it.
  const aws_profiles m = parse_aws_ini(
      "[default]\nca_bundle = first\n   second   \naws_access_key_id = A\n  aws_secret = x\n",
      false);
  EXPECT_EQ(m.at("default").at("ca_bundle"), "first\nsecond");
  EXPECT_EQ(m.at("default").at("aws_access_key_id"), "A\naws_secret = x");
  EXPECT_FALSE(m.at("default").contains("aws_secret"));
  EXPECT_EQ(p.at("prod").at("region"), "eu-west-1");

  // In a credentials file a section is the profile's name as written.
  const aws_profiles c = parse_aws_ini("[profile prod]\nregion = x\n[prod]\nregion = y\n", false);
  EXPECT_EQ(c.at("profile prod").at("region"), "x");
  EXPECT_EQ(c.at("prod").at("region"), "y");
}

TEST(aws_ini, malformed_lines_are_named) {
  auto err = [](std::string_view text) {
    try {
      parse_aws_ini(text, false);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("<no exception>");
  };
  EXPECT_EQ(err("[default]\naws_access_key_id = A\n\nwJalrXUtnFEMI\n"),
            "line 4: expected [section] or key = value");
  EXPECT_EQ(err("[default\n"), "line 1: section header without ']'");
  EXPECT_EQ(err("# c\n[]\n"), "line 2: empty section name");
  EXPECT_EQ(err("[default] x\n"), "line 1: text after the section header");
  EXPECT_EQ(err("region = x\n[default]\n"), "line 1: key = value before the first [section]");
  EXPECT_EQ(err("[default]\n = x\n"), "line 2: no key before '='");
  // The offending text is not repeated: it may be a secret.
  EXPECT_THAT(err("[default]\nwJalrXUtnFEMI/K7MDENG\n"), Not(HasSubstr("wJalr")));
}

// ---- the default chain ----

class chain_test : public ::testing::Test {
 protected:
  chain_test() {
    world.vars["HOME"] = dir.path();
    std::filesystem::create_directory(dir.file(".aws"));
  }
  std::string credentials_file(const std::string& content) {
    return dir.write(".aws/credentials", content);
  }
  std::string config_file(const std::string& content) { return dir.write(".aws/config", content); }

  tandem::test::temp_dir dir{"aws-cred"};
  scripted_http http;
  fake_world world;
  imds_client imds{http, imds_settings{}, world.env()};
};

TEST_F(chain_test, environment_credentials_with_session_token) {
  world.vars["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  world.vars["AWS_SECRET_ACCESS_KEY"] = "secret-env";
  world.vars["AWS_SESSION_TOKEN"] = "token-env";
  credentials_file("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n");
  auto src = make_default_credentials(world.env(), &imds);
  const credentials c = src->get();
  EXPECT_EQ(c.access_key_id, "AKIDENV");
  EXPECT_EQ(c.secret_access_key, "secret-env");
  EXPECT_EQ(c.session_token, "token-env");
  EXPECT_EQ(src->describe(), "environment");
  EXPECT_TRUE(http.calls.empty());
}

TEST_F(chain_test, only_one_environment_key_is_an_error) {
  world.vars["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  credentials_file("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n");
  EXPECT_EQ(error_of([&] { make_default_credentials(world.env(), &imds)->get(); }),
            "AWS credentials: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
  world.vars.erase("AWS_ACCESS_KEY_ID");
  world.vars["AWS_SECRET_ACCESS_KEY"] = "secret-env";
  EXPECT_EQ(error_of([&] { make_default_credentials(world.env(), &imds)->get(); }),
            "AWS credentials: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
  EXPECT_TRUE(http.calls.empty());
}

TEST_F(chain_test, profile_from_the_credentials_file) {
  world.vars["AWS_ACCESS_KEY_ID"] = "";  // empty counts as unset
  world.vars["AWS_PROFILE"] = "prod";
  const std::string path = credentials_file(
      "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = sdef\n"
      "[prod]\naws_access_key_id = AKIDPROD\naws_secret_access_key = sprod\n"
      "aws_session_token = tprod\n");
  auto src = make_default_credentials(world.env(), &imds);
  const credentials c = src->get();
  EXPECT_EQ(c.access_key_id, "AKIDPROD");
  EXPECT_EQ(c.secret_access_key, "sprod");
  EXPECT_EQ(c.session_token, "tprod");
  EXPECT_EQ(src->describe(), "profile prod (" + path + ")");
}

TEST_F(chain_test, profile_from_the_config_file) {
  world.vars["AWS_PROFILE"] = "prod";
  credentials_file(
      "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = sdef\n"
      "[prod]\nregion = eu-west-1\n");  // the profile, but without keys
  const std::string path = config_file(
      "[prod]\naws_access_key_id = NOTAPROFILE\naws_secret_access_key = x\n"
      "[profile prod]\naws_access_key_id = AKIDCFG\naws_secret_access_key = scfg\n");
  auto src = make_default_credentials(world.env(), &imds);
  const credentials c = src->get();
  EXPECT_EQ(c.access_key_id, "AKIDCFG");
  EXPECT_EQ(c.session_token, "");
  EXPECT_EQ(src->describe(), "profile prod (" + path + ")");
}

TEST_F(chain_test, credentials_file_has_precedence_over_config_file) {
  const std::string path =
      credentials_file("[default]\naws_access_key_id = AKIDCRED\naws_secret_access_key = s1\n");
  config_file(
      "[default]\naws_access_key_id = AKIDCFG\naws_secret_access_key = s2\n"
      "aws_session_token = t2\n");
  auto src = make_default_credentials(world.env(), &imds);
  const credentials c = src->get();
  EXPECT_EQ(c.access_key_id, "AKIDCRED");
  EXPECT_EQ(c.secret_access_key, "s1");
  EXPECT_EQ(c.session_token, "");  // never mixed from the other file
  EXPECT_EQ(src->describe(), "profile default (" + path + ")");
}

TEST_F(chain_test, shared_file_locations_from_the_environment) {
  world.vars["AWS_SHARED_CREDENTIALS_FILE"] = dir.write("creds", "[x]\nregion = y\n");
  world.vars["AWS_CONFIG_FILE"] =
      dir.write("conf", "[default]\naws_access_key_id = AKIDC\naws_secret_access_key = s\n");
  credentials_file("[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = s\n");
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_EQ(src->get().access_key_id, "AKIDC");
  EXPECT_EQ(src->describe(), "profile default (" + dir.file("conf") + ")");
}

TEST_F(chain_test, missing_chosen_profile_is_an_error) {
  world.vars["AWS_PROFILE"] = "staging";
  credentials_file("[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = sdef\n");
  EXPECT_EQ(error_of([&] { make_default_credentials(world.env(), &imds)->get(); }),
            "AWS credentials: AWS_PROFILE is staging but there is no profile staging in " +
                dir.file(".aws/credentials") + ", " + dir.file(".aws/config") + " (missing)");
  EXPECT_TRUE(http.calls.empty());
}

TEST_F(chain_test, profile_without_secret_names_the_file) {
  world.vars["AWS_PROFILE"] = "prod";
  config_file("[profile prod]\naws_access_key_id = AKIDCFG\n");
  EXPECT_EQ(error_of([&] { make_default_credentials(world.env(), &imds)->get(); }),
            "AWS credentials: profile prod in " + dir.file(".aws/config") +
                " has aws_access_key_id but no aws_secret_access_key");
}

TEST_F(chain_test, malformed_file_names_file_and_line) {
  credentials_file("[default]\naws_access_key_id = AKID\naws_secret_access_key\n");
  EXPECT_EQ(error_of([&] { make_default_credentials(world.env(), &imds)->get(); }),
            dir.file(".aws/credentials") + " line 3: expected [section] or key = value");
}

TEST_F(chain_test, nothing_found_lists_every_source) {
  config_file("[default]\nregion = eu-west-1\n");  // a default profile without keys
  auto src = make_default_credentials(world.env(), nullptr);
  EXPECT_EQ(error_of([&] { src->get(); }),
            "no AWS credentials: AWS_ACCESS_KEY_ID is not set, profile default has none in " +
                dir.file(".aws/credentials") + " (missing), " + dir.file(".aws/config") +
                ", instance metadata: not used");

  http.expect("PUT", token_url, 200, "tok");
  http.expect("GET", roles_url, 404, "<html>404 - Not Found</html>");
  auto with_imds = make_default_credentials(world.env(), &imds);
  EXPECT_THAT(error_of([&] { with_imds->get(); }),
              AllOf(HasSubstr("AWS_ACCESS_KEY_ID is not set"), HasSubstr("profile default"),
                    HasSubstr("instance metadata: GET meta-data/iam/security-credentials/: "
                              "HTTP 404")));
  EXPECT_TRUE(http.done());
}

TEST_F(chain_test, metadata_disabled_by_the_environment) {
  world.vars["AWS_EC2_METADATA_DISABLED"] = "TRUE";
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_THAT(error_of([&] { src->get(); }),
              HasSubstr("instance metadata: AWS_EC2_METADATA_DISABLED is true"));
  world.vars["AWS_REGION"] = "";
  EXPECT_THAT(error_of([&] { resolve_region("", world.env(), &imds); }),
              HasSubstr("instance metadata: AWS_EC2_METADATA_DISABLED is true"));
  EXPECT_TRUE(http.calls.empty());
}

TEST_F(chain_test, instance_role_credentials_refreshed_before_expiration) {
  // now is 2023-11-14T22:13:20Z; the first credentials expire an hour later.
  http.expect("PUT", token_url, 200, "tok");
  http.expect("GET", roles_url, 200, "web-role\nsecond-line-ignored\n");
  http.expect("GET", roles_url + "web-role", 200, role_json("ASIA1", "2023-11-14T23:13:20Z"));
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_EQ(src->describe(), "the default chain (environment, profile, instance role)");
  credentials c = src->get();
  EXPECT_EQ(c.access_key_id, "ASIA1");
  EXPECT_EQ(c.secret_access_key, "secret-ASIA1");
  EXPECT_EQ(c.session_token, "token-ASIA1");
  EXPECT_EQ(src->describe(), "instance role web-role (IMDSv2)");
  EXPECT_TRUE(http.done());

  // Cached until five minutes before the Expiration.
  world.now += 54min;
  EXPECT_EQ(src->get().access_key_id, "ASIA1");
  EXPECT_EQ(http.calls.size(), 3u);

  // A source once chosen is kept: keys appearing in the environment change nothing.
  world.vars["AWS_ACCESS_KEY_ID"] = "AKIDENV";
  world.vars["AWS_SECRET_ACCESS_KEY"] = "secret-env";
  world.now += 2min;  // four minutes left
  http.expect("GET", roles_url, 200, "web-role");
  http.expect("GET", roles_url + "web-role", 200, role_json("ASIA2", "2023-11-15T05:13:20.000Z"));
  c = src->get();
  EXPECT_EQ(c.access_key_id, "ASIA2");
  EXPECT_EQ(c.session_token, "token-ASIA2");
  EXPECT_TRUE(http.done());
  EXPECT_EQ(header(http.calls.back(), "X-aws-ec2-metadata-token"), "tok");  // token reused
}

TEST_F(chain_test, instance_role_refresh_failure_keeps_credentials_still_valid) {
  http.expect("PUT", token_url, 200, "tok");
  http.expect("GET", roles_url, 200, "web-role");
  http.expect("GET", roles_url + "web-role", 200, role_json("ASIA1", "2023-11-14T22:23:20Z"));
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_EQ(src->get().access_key_id, "ASIA1");

  world.now += 6min;  // four minutes left: refresh, which fails
  http.expect("GET", roles_url, 404, "");
  EXPECT_EQ(src->get().access_key_id, "ASIA1");

  world.now += 3min + 30s;  // 30 s left: too little to hand out
  http.expect("GET", roles_url, 404, "");
  EXPECT_EQ(error_of([&] { src->get(); }),
            "instance metadata: GET meta-data/iam/security-credentials/: HTTP 404");
  EXPECT_TRUE(http.done());
}

TEST_F(chain_test, invalidate_refetches_instance_role_credentials) {
  http.expect("PUT", token_url, 200, "tok");
  http.expect("GET", roles_url, 200, "web-role");
  http.expect("GET", roles_url + "web-role", 200, role_json("ASIA1", "2023-11-15T04:00:00Z"));
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_EQ(src->get().access_key_id, "ASIA1");
  src->invalidate();
  http.expect("GET", roles_url, 200, "other-role");
  http.expect("GET", roles_url + "other-role", 200, role_json("ASIA2", "2023-11-15T04:00:00Z"));
  EXPECT_EQ(src->get().access_key_id, "ASIA2");
  EXPECT_EQ(src->describe(), "instance role other-role (IMDSv2)");
  EXPECT_EQ(src->get().access_key_id, "ASIA2");  // fetched once
  EXPECT_TRUE(http.done());
}

TEST_F(chain_test, invalidate_rereads_static_credentials) {
  world.vars["AWS_ACCESS_KEY_ID"] = "AKID1";
  world.vars["AWS_SECRET_ACCESS_KEY"] = "s1";
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_EQ(src->get().access_key_id, "AKID1");
  world.vars["AWS_ACCESS_KEY_ID"] = "AKID2";
  EXPECT_EQ(src->get().access_key_id, "AKID1");  // kept
  src->invalidate();
  EXPECT_EQ(src->get().access_key_id, "AKID2");

  credentials_file("[default]\naws_access_key_id = AKIDF1\naws_secret_access_key = s\n");
  world.vars.erase("AWS_ACCESS_KEY_ID");
  world.vars.erase("AWS_SECRET_ACCESS_KEY");
  auto from_file = make_default_credentials(world.env(), &imds);
  EXPECT_EQ(from_file->get().access_key_id, "AKIDF1");
  credentials_file("[default]\naws_access_key_id = AKIDF2\naws_secret_access_key = s\n");
  EXPECT_EQ(from_file->get().access_key_id, "AKIDF1");
  from_file->invalidate();
  EXPECT_EQ(from_file->get().access_key_id, "AKIDF2");
}

TEST_F(chain_test, role_answer_not_success_is_an_error) {
  http.expect("PUT", token_url, 200, "tok");
  http.expect("GET", roles_url, 200, "web-role");
  http.expect(
      "GET", roles_url + "web-role", 200,
      R"({"Code": "AssumeRoleUnauthorizedAccess", "Message": "EC2 cannot assume the role"})");
  auto src = make_default_credentials(world.env(), &imds);
  EXPECT_THAT(error_of([&] { src->get(); }),
              AllOf(HasSubstr("no AWS credentials: "),
                    HasSubstr("instance metadata: credentials of role web-role: Code "
                              "AssumeRoleUnauthorizedAccess: EC2 cannot assume the role")));
}

TEST_F(chain_test, role_answer_malformed_is_an_error) {
  auto fetch = [&](const std::string& body) {
    http.expect("PUT", token_url, 200, "tok");
    http.expect("GET", roles_url, 200, "web-role");
    http.expect("GET", roles_url + "web-role", 200, body);
    imds_client fresh(http, imds_settings{}, world.env());
    return error_of([&] { make_default_credentials(world.env(), &fresh)->get(); });
  };
  EXPECT_THAT(fetch("<html>oops</html>"), HasSubstr("role web-role: not a JSON object"));
  EXPECT_THAT(fetch(R"({"Code": "Success", "AccessKeyId": "A"})"),
              HasSubstr("role web-role: no SecretAccessKey"));
  EXPECT_THAT(fetch(role_json("A", "2023-11-15 04:00:00")),
              HasSubstr("Expiration 2023-11-15 04:00:00 is not a UTC time"));
  EXPECT_THAT(fetch(role_json("A", "2023-11-14T22:13:50Z")), HasSubstr("in less than a minute"));
  EXPECT_TRUE(http.done());
}

// ---- region ----

TEST_F(chain_test, region_in_order_of_precedence) {
  config_file("[default]\nregion = eu-north-1\n[profile prod]\nregion = ap-east-1\n");
  credentials_file("[staging]\nregion = nowhere\n");  // regions are read from the config only
  EXPECT_EQ(resolve_region("us-west-2", world.env(), &imds), "us-west-2");
  world.vars["AWS_DEFAULT_REGION"] = "sa-east-1";
  EXPECT_EQ(resolve_region("", world.env(), &imds), "sa-east-1");
  world.vars["AWS_REGION"] = "ca-central-1";
  EXPECT_EQ(resolve_region("", world.env(), &imds), "ca-central-1");
  world.vars.erase("AWS_REGION");
  world.vars.erase("AWS_DEFAULT_REGION");
  EXPECT_EQ(resolve_region("", world.env(), &imds), "eu-north-1");
  world.vars["AWS_PROFILE"] = "prod";
  EXPECT_EQ(resolve_region("", world.env(), &imds), "ap-east-1");
  EXPECT_TRUE(http.calls.empty());

  world.vars["AWS_PROFILE"] = "staging";
  http.expect("PUT", token_url, 200, "tok");
  http.expect("GET", region_url, 200, "me-south-1\n");
  EXPECT_EQ(resolve_region("", world.env(), &imds), "me-south-1");
  EXPECT_TRUE(http.done());
}

TEST_F(chain_test, region_not_found_lists_where_it_looked) {
  EXPECT_EQ(error_of([&] { resolve_region("", world.env(), nullptr); }),
            "no AWS region: none configured, AWS_REGION and AWS_DEFAULT_REGION are not set, "
            "profile default has no region in " +
                dir.file(".aws/config") + " (missing), instance metadata: not used");
  for (int i = 0; i < 3; ++i)
    http.expect_no_answer("PUT", token_url, "Connection refused");
  EXPECT_THAT(error_of([&] { resolve_region("", world.env(), &imds); }),
              HasSubstr("instance metadata: no answer from http://169.254.169.254: "
                        "Connection refused"));
  EXPECT_TRUE(http.done());
}

}  // namespace
}  // namespace tandem::ctl::cloud
