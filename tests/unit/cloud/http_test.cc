// SPDX-License-Identifier: Apache-2.0
// The libcurl http_client against an in-process HTTP(S) server on 127.0.0.1: what goes on the
// wire, what comes back, failures, timeouts, TLS trust, connection reuse and proxy handling.
#include "control/cloud/http.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tests/support/temp_dir.h"

namespace tandem::ctl::cloud {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// ---- environment -------------------------------------------------------------------------

// Sets or unsets environment variables and puts the old values back when it goes away.
class env_guard {
 public:
  env_guard() = default;
  ~env_guard() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;

  void set(const std::string& name, const std::string& value) {
    save(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    save(name);
    ::unsetenv(name.c_str());
  }

 private:
  void save(const std::string& name) {
    const char* v = ::getenv(name.c_str());
    saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

const char* const proxy_vars[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};

// ---- sockets -----------------------------------------------------------------------------

class fd_guard {
 public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

// A TCP socket bound to 127.0.0.1 on a free port; with `listen_backlog`, also listening.
int loopback_socket(std::optional<int> listen_backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      (listen_backlog && ::listen(fd, *listen_backlog) != 0)) {
    ::close(fd);
    throw std::runtime_error("bind/listen on 127.0.0.1 failed");
  }
  return fd;
}

int port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// A port where nothing listens: bound (so nobody else takes it) but not listening, so a connect
// is refused at once.
struct dead_port {
  fd_guard fd{loopback_socket(std::nullopt)};
  int port = port_of(fd.get());
};

// A server that completes TCP handshakes (the kernel does, from the backlog) but never reads or
// answers.
struct silent_server {
  fd_guard fd{loopback_socket(16)};
  int port = port_of(fd.get());
};

// ---- TLS material ------------------------------------------------------------------------

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
struct ssl_ctx_free {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;

void check(bool ok, const char* what) {
  if (!ok) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    throw std::runtime_error(std::string(what) + ": " + buf);
  }
}

struct identity {
  pkey_ptr key;
  x509_ptr cert;
};

// A P-256 key and a certificate for it, signed by `issuer` (self-signed when null).
identity make_identity(const std::string& cn, bool is_ca, const identity* issuer) {
  identity id;
  id.key.reset(EVP_EC_gen("P-256"));
  check(id.key != nullptr, "EVP_EC_gen");
  id.cert.reset(X509_new());
  X509* x = id.cert.get();
  check(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
  static std::atomic<long> serial{1};
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 24 * 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : x;
  EVP_PKEY* issuer_key = issuer ? issuer->key.get() : id.key.get();
  check(X509_set_issuer_name(x, X509_get_subject_name(issuer_cert)) == 1, "set_issuer_name");
  check(X509_set_pubkey(x, id.key.get()) == 1, "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert, x, nullptr, nullptr, 0);
  const std::vector<std::pair<int, const char*>> exts =
      is_ca ? std::vector<std::pair<int, const char*>>{{NID_basic_constraints, "critical,CA:TRUE"},
                                                       {NID_key_usage, "critical,keyCertSign"},
                                                       {NID_subject_key_identifier, "hash"}}
            : std::vector<std::pair<int, const char*>>{{NID_basic_constraints, "critical,CA:FALSE"},
                                                       {NID_key_usage, "critical,digitalSignature"},
                                                       {NID_ext_key_usage, "serverAuth"},
                                                       {NID_subject_alt_name, "IP:127.0.0.1"},
                                                       {NID_authority_key_identifier, "keyid"}};
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    check(e != nullptr, "X509V3_EXT_conf_nid");
    const int ok = X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    check(ok == 1, "X509_add_ext");
  }
  check(X509_sign(x, issuer_key, EVP_sha256()) > 0, "X509_sign");
  return id;
}

std::string pem(X509* cert) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA; the CAs as PEM
// files for the client's ca_file.
struct tls_material {
  test::temp_dir dir{"http-test"};
  identity ca = make_identity("tandem test CA", true, nullptr);
  identity server = make_identity("127.0.0.1", false, &ca);
  identity other_ca = make_identity("someone else's CA", true, nullptr);
  std::string ca_file = dir.write("ca.pem", pem(ca.cert.get()));
  std::string other_ca_file = dir.write("other-ca.pem", pem(other_ca.cert.get()));

  [[nodiscard]] ssl_ctx_ptr server_ctx() const {
    ssl_ctx_ptr c(SSL_CTX_new(TLS_server_method()));
    check(c != nullptr, "SSL_CTX_new");
    check(SSL_CTX_use_certificate(c.get(), server.cert.get()) == 1, "use_certificate");
    check(SSL_CTX_use_PrivateKey(c.get(), server.key.get()) == 1, "use_PrivateKey");
    return c;
  }
};

// ---- the server --------------------------------------------------------------------------

struct request {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;

  [[nodiscard]] size_t count(std::string_view name) const {
    size_t n = 0;
    for (const auto& h : headers)
      n += strcasecmp(h.first.c_str(), std::string(name).c_str()) == 0;
    return n;
  }
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const {
    for (const auto& h : headers) {
      if (strcasecmp(h.first.c_str(), std::string(name).c_str()) == 0) return h.second;
    }
    return std::nullopt;
  }
};

struct response {
  int status = 200;
  std::string reason = "OK";
  header_list headers;
  std::string body;
  std::string interim;  // written verbatim before the response (a 1xx answer)
};

// HTTP/1.1 with keep-alive on 127.0.0.1, over TLS when given an SSL_CTX: one thread accepts,
// one thread per connection serves requests in turn through `handler`.
class test_server {
 public:
  using handler = std::function<response(const request&)>;

  explicit test_server(handler h, SSL_CTX* tls = nullptr)
      : handler_(std::move(h)), tls_(tls), listen_(loopback_socket(64)) {
    // The client may close a connection while a reply is being written.
    ::signal(SIGPIPE, SIG_IGN);
    if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~test_server() {
    (void)::write(wake_[1], "x", 1);
    acceptor_.join();
    {
      const std::lock_guard lock(mu_);
      for (const int fd : conns_)
        ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_)
      t.join();
    for (const int fd : conns_)
      ::close(fd);
    ::close(wake_[0]);
    ::close(wake_[1]);
  }
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  [[nodiscard]] int port() const { return port_of(listen_.get()); }
  [[nodiscard]] std::string url(const std::string& path) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) + path;
  }
  [[nodiscard]] int accepts() const { return accepts_.load(); }
  [[nodiscard]] std::vector<request> requests() const {
    const std::lock_guard lock(mu_);
    return requests_;
  }
  [[nodiscard]] request last() const {
    const std::lock_guard lock(mu_);
    if (requests_.empty()) throw std::runtime_error("no request arrived");
    return requests_.back();
  }

 private:
  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_.get(), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) continue;
      if (p[1].revents != 0) return;
      const int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepts_;
      const std::lock_guard lock(mu_);
      conns_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(nullptr, SSL_free);
    if (tls_ != nullptr) {
      ssl.reset(SSL_new(tls_));
      SSL_set_fd(ssl.get(), fd);
      if (SSL_accept(ssl.get()) != 1) return;  // e.g. a client that does not trust us
    }
    const auto receive = [&](char* p, size_t n) -> long {
      return ssl ? SSL_read(ssl.get(), p, static_cast<int>(n)) : ::recv(fd, p, n, 0);
    };
    const auto send_all = [&](const std::string& s) {
      size_t off = 0;
      while (off < s.size()) {
        const long n = ssl ? SSL_write(ssl.get(), s.data() + off, static_cast<int>(s.size() - off))
                           : ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<size_t>(n);
      }
      return true;
    };
    std::string in;
    char buf[16384];
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        const long n = receive(buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
      }
      request req = parse_head(in.substr(0, end));
      in.erase(0, end + 4);
      const size_t length =
          req.header("content-length") ? std::stoul(*req.header("content-length")) : 0;
      while (in.size() < length) {
        const long n = receive(buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
      }
      req.body = in.substr(0, length);
      in.erase(0, length);

      const response r = handler_(req);
      {
        const std::lock_guard lock(mu_);
        requests_.push_back(req);
      }
      std::string out = r.interim;
      out += "HTTP/1.1 " + std::to_string(r.status) + " " + r.reason + "\r\n";
      for (const auto& [name, value] : r.headers)
        out += name + ": " + value + "\r\n";
      out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
      if (req.method != "HEAD") out += r.body;
      if (!send_all(out)) return;
    }
  }

  static request parse_head(const std::string& head) {
    request req;
    size_t pos = head.find("\r\n");
    const std::string line = head.substr(0, pos);
    const size_t sp1 = line.find(' ');
    const size_t sp2 = line.find(' ', sp1 + 1);
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    while (pos != std::string::npos) {
      const size_t start = pos + 2;
      pos = head.find("\r\n", start);
      const std::string h = head.substr(start, pos == std::string::npos ? pos : pos - start);
      const size_t colon = h.find(':');
      std::string value = h.substr(colon + 1);
      while (!value.empty() && value.front() == ' ')
        value.erase(0, 1);
      req.headers.emplace_back(h.substr(0, colon), value);
    }
    return req;
  }

  handler handler_;
  SSL_CTX* tls_;
  fd_guard listen_;
  int wake_[2] = {-1, -1};
  std::atomic<int> accepts_{0};
  mutable std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::vector<request> requests_;
  std::thread acceptor_;
};

response echo_method(const request& r) {
  response out;
  out.headers = {{"Content-Type", "text/plain"}};
  out.body = "ok " + r.method;
  return out;
}

http_settings settings(std::chrono::milliseconds total_timeout, std::string ca_file = "",
                       bool use_proxy = true) {
  http_settings s;
  s.total_timeout = total_timeout;
  s.ca_file = std::move(ca_file);
  s.use_proxy = use_proxy;
  return s;
}
http_settings trusting(std::string ca_file, bool use_proxy = true) {
  return settings(http_settings{}.total_timeout, std::move(ca_file), use_proxy);
}

http_call call(std::string method, std::string url, std::string body = "",
               header_list headers = {}) {
  http_call c;
  c.method = std::move(method);
  c.url = std::move(url);
  c.body = std::move(body);
  c.headers = std::move(headers);
  return c;
}

// The host's proxy settings must not reach these tests: each starts with none, and the proxy
// tests set their own.
class http_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : proxy_vars)
      env_.unset(v);
  }
  env_guard env_;
};

// ---- tests -------------------------------------------------------------------------------

TEST(http_reply, header_lookup_ignores_case_and_takes_the_first) {
  http_reply r;
  r.headers = {{"x-amz-request-id", "one"}, {"x-dup", "1"}, {"x-dup", "2"}, {"x-empty", ""}};
  EXPECT_EQ(r.header("X-Amz-Request-Id"), "one");
  EXPECT_EQ(r.header("x-amz-request-id"), "one");
  EXPECT_EQ(r.header("X-DUP"), "1");
  EXPECT_EQ(r.header("x-empty"), "");
  EXPECT_EQ(r.header("missing"), "");
  EXPECT_EQ(r.header("x-amz-request-i"), "");
}

TEST_F(http_test, methods_paths_headers_and_bodies_arrive_as_sent) {
  test_server server(echo_method);
  auto client = make_curl_client({});

  // GET: path and encoded query untouched, headers as given (an empty one included), no body
  // and no Content-Length.
  http_reply r = client->send(call("GET", server.url("/a/b%20c?x=1&y=%2F&z"), "",
                                   {{"X-Amz-Date", "20240101T000000Z"}, {"X-Empty", ""}}));
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "ok GET");
  EXPECT_EQ(r.error, "");
  request q = server.last();
  EXPECT_EQ(q.method, "GET");
  EXPECT_EQ(q.target, "/a/b%20c?x=1&y=%2F&z");
  EXPECT_EQ(q.header("x-amz-date"), "20240101T000000Z");
  EXPECT_EQ(q.count("x-empty"), 1U);
  EXPECT_EQ(q.header("x-empty"), "");
  EXPECT_EQ(q.count("content-length"), 0U);
  EXPECT_EQ(q.body, "");

  // POST with a body and the caller's content type (exactly one, the caller's).
  const std::string form = "Action=DescribeInstances&Version=2016-11-15";
  r = client->send(call("POST", server.url("/"), form,
                        {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}}));
  EXPECT_EQ(r.body, "ok POST");
  q = server.last();
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.body, form);
  EXPECT_EQ(q.header("content-length"), std::to_string(form.size()));
  EXPECT_EQ(q.count("content-type"), 1U);
  EXPECT_EQ(q.header("content-type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(q.count("expect"), 0U);

  // POST without a body: Content-Length: 0, and no content type the caller did not ask for.
  r = client->send(call("POST", server.url("/empty-post")));
  q = server.last();
  EXPECT_EQ(q.method, "POST");
  EXPECT_EQ(q.header("content-length"), "0");
  EXPECT_EQ(q.count("content-type"), 0U);

  // A large POST (libcurl would add Expect: 100-continue above 1 MiB) goes out in one piece.
  const std::string big(1536 * 1024, 'b');
  r = client->send(call("POST", server.url("/big"), big));
  EXPECT_EQ(r.status, 200) << r.error;
  q = server.last();
  EXPECT_EQ(q.body.size(), big.size());
  EXPECT_EQ(q.body, big);
  EXPECT_EQ(q.count("expect"), 0U);

  // PUT with an empty body must still say Content-Length: 0.
  r = client->send(call("PUT", server.url("/bucket/key")));
  EXPECT_EQ(r.body, "ok PUT");
  q = server.last();
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.target, "/bucket/key");
  EXPECT_EQ(q.header("content-length"), "0");
  EXPECT_EQ(q.count("expect"), 0U);
  EXPECT_EQ(q.count("content-type"), 0U);
  EXPECT_EQ(q.body, "");

  // PUT with a body.
  r = client->send(
      call("PUT", server.url("/bucket/key"), "{\"v\":1}", {{"Content-Type", "application/json"}}));
  q = server.last();
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.body, "{\"v\":1}");
  EXPECT_EQ(q.header("content-type"), "application/json");

  // DELETE without a body: no Content-Length; with one: the body and its length.
  r = client->send(call("DELETE", server.url("/bucket/key?versionId=3")));
  EXPECT_EQ(r.body, "ok DELETE");
  q = server.last();
  EXPECT_EQ(q.method, "DELETE");
  EXPECT_EQ(q.target, "/bucket/key?versionId=3");
  EXPECT_EQ(q.count("content-length"), 0U);
  r = client->send(call("DELETE", server.url("/x"), "gone"));
  q = server.last();
  EXPECT_EQ(q.method, "DELETE");
  EXPECT_EQ(q.body, "gone");
  EXPECT_EQ(q.header("content-length"), "4");

  // HEAD: the headers of the answer, no body expected or waited for.
  r = client->send(call("HEAD", server.url("/head")));
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("content-length"), "7");
  EXPECT_EQ(server.last().method, "HEAD");

  EXPECT_EQ(server.requests().size(), 9U);
}

TEST_F(http_test, status_codes_come_back_with_their_bodies) {
  test_server server([](const request& q) {
    response r;
    if (q.target == "/missing") {
      r.status = 404;
      r.reason = "Not Found";
      r.body = "<Error><Code>NoSuchKey</Code></Error>";
    } else if (q.target == "/busy") {
      r.status = 503;
      r.reason = "Service Unavailable";
      r.body = "slow down";
    } else {
      r.body = "fine";
    }
    return r;
  });
  auto client = make_curl_client({});
  for (const auto& [path, status, body] : std::vector<std::tuple<std::string, long, std::string>>{
           {"/ok", 200, "fine"},
           {"/missing", 404, "<Error><Code>NoSuchKey</Code></Error>"},
           {"/busy", 503, "slow down"}}) {
    const http_reply r = client->send(call("GET", server.url(path)));
    EXPECT_EQ(r.status, status) << path;
    EXPECT_EQ(r.body, body) << path;
    EXPECT_EQ(r.error, "") << path;
    EXPECT_FALSE(r.timed_out) << path;
  }
}

TEST_F(http_test, response_headers_are_lower_cased_and_only_the_final_block_is_kept) {
  test_server server([](const request&) {
    response r;
    // An interim answer first: its headers are not the response's.
    r.interim = "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n";
    r.headers = {{"Content-Type", "text/xml"},
                 {"X-Amz-Request-Id", "ABC-123"},
                 {"X-Dup", "1"},
                 {"x-dup", "2"},
                 {"Location", "http://example.com:8080/x"},
                 {"X-Padded", "  spaced out  "}};
    r.body = "<a/>";
    return r;
  });
  auto client = make_curl_client({});
  const http_reply r = client->send(call("GET", server.url("/")));
  ASSERT_EQ(r.status, 200) << r.error;
  const header_list expected = {{"content-type", "text/xml"},
                                {"x-amz-request-id", "ABC-123"},
                                {"x-dup", "1"},
                                {"x-dup", "2"},
                                {"location", "http://example.com:8080/x"},
                                {"x-padded", "spaced out"},
                                {"content-length", "4"}};
  EXPECT_EQ(r.headers, expected);
  EXPECT_EQ(r.header("X-AMZ-REQUEST-ID"), "ABC-123");
  EXPECT_EQ(r.header("x-interim"), "");
  EXPECT_EQ(r.body, "<a/>");
}

TEST_F(http_test, refused_connection_is_status_zero_with_libcurls_reason) {
  const dead_port dead;
  auto client = make_curl_client({});
  const http_reply r =
      client->send(call("GET", "http://127.0.0.1:" + std::to_string(dead.port) + "/"));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.body, "");
  // curl_easy_strerror, then the error buffer's detail naming the address.
  EXPECT_NE(r.error.find("Couldn't connect to server"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("port " + std::to_string(dead.port)), std::string::npos) << r.error;
}

TEST_F(http_test, a_server_that_never_answers_times_out_on_time) {
  const silent_server silent;
  const std::string url = "http://127.0.0.1:" + std::to_string(silent.port) + "/";

  // The per-call limit overrides the client's.
  auto client = make_curl_client(settings(10s));
  http_call c = call("GET", url);
  c.total_timeout = 300ms;
  auto t0 = clock_type::now();
  http_reply r = client->send(c);
  auto took = clock_type::now() - t0;
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.timed_out) << r.error;
  EXPECT_NE(r.error.find("Timeout was reached"), std::string::npos) << r.error;
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 1500ms);

  // The client's own limit when the call sets none.
  auto short_client = make_curl_client(settings(300ms));
  t0 = clock_type::now();
  r = short_client->send(call("GET", url));
  took = clock_type::now() - t0;
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.timed_out) << r.error;
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 1500ms);
}

TEST_F(http_test, https_trusts_the_given_ca_and_no_other) {
  const tls_material tls;
  const ssl_ctx_ptr ctx = tls.server_ctx();
  test_server server(echo_method, ctx.get());

  auto good = make_curl_client(trusting(tls.ca_file));
  http_reply r = good->send(call("PUT", server.url("/secure"), "payload"));
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "ok PUT");
  EXPECT_EQ(server.last().body, "payload");

  auto wrong = make_curl_client(trusting(tls.other_ca_file));
  r = wrong->send(call("GET", server.url("/secure")));
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.error.find("certificate"), std::string::npos) << r.error;
  EXPECT_EQ(server.requests().size(), 1U);  // nothing reached the server over the bad channel

  // The system store does not know the test CA either.
  auto system = make_curl_client({});
  r = system->send(call("GET", server.url("/secure")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("certificate"), std::string::npos) << r.error;
}

TEST_F(http_test, a_missing_ca_file_fails_at_construction) {
  const test::temp_dir dir("http-test");
  EXPECT_THROW((void)make_curl_client(trusting(dir.file("nope.pem"))), std::runtime_error);
}

TEST_F(http_test, calls_on_one_client_share_one_connection) {
  test_server plain(echo_method);
  auto client = make_curl_client({});
  EXPECT_EQ(client->send(call("GET", plain.url("/1"))).status, 200);
  EXPECT_EQ(client->send(call("PUT", plain.url("/2"))).status, 200);
  EXPECT_EQ(client->send(call("GET", plain.url("/3"))).status, 200);
  EXPECT_EQ(plain.accepts(), 1);
  // A second client is a second connection: the count above means something.
  auto other = make_curl_client({});
  EXPECT_EQ(other->send(call("GET", plain.url("/4"))).status, 200);
  EXPECT_EQ(plain.accepts(), 2);

  // Over TLS too: the second call pays no handshake.
  const tls_material tls;
  const ssl_ctx_ptr ctx = tls.server_ctx();
  test_server secure(echo_method, ctx.get());
  auto tls_client = make_curl_client(trusting(tls.ca_file));
  EXPECT_EQ(tls_client->send(call("GET", secure.url("/1"))).status, 200);
  EXPECT_EQ(tls_client->send(call("POST", secure.url("/2"), "x")).status, 200);
  EXPECT_EQ(secure.accepts(), 1);
}

TEST_F(http_test, proxy_variables_are_used_only_when_use_proxy_is_set) {
  const dead_port proxy;
  const std::string proxy_url = "http://127.0.0.1:" + std::to_string(proxy.port);
  for (const char* v : {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
    env_.set(v, proxy_url);
  }
  const tls_material tls;
  const ssl_ctx_ptr ctx = tls.server_ctx();
  test_server plain(echo_method);
  test_server secure(echo_method, ctx.get());

  // use_proxy = false: straight to the server, for both schemes.
  auto direct = make_curl_client(trusting(tls.ca_file, false));
  http_reply r = direct->send(call("GET", plain.url("/")));
  EXPECT_EQ(r.status, 200) << r.error;
  r = direct->send(call("GET", secure.url("/")));
  EXPECT_EQ(r.status, 200) << r.error;

  // use_proxy = true: libcurl reads the variables itself and tries the (dead) proxy.
  auto proxied = make_curl_client(trusting(tls.ca_file, true));
  r = proxied->send(call("GET", plain.url("/")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("port " + std::to_string(proxy.port)), std::string::npos) << r.error;
  r = proxied->send(call("GET", secure.url("/")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("port " + std::to_string(proxy.port)), std::string::npos) << r.error;
  EXPECT_EQ(plain.accepts(), 1);
  EXPECT_EQ(secure.accepts(), 1);

  // Only http_proxy set (the case an IMDS call over plain http meets): still used.
  for (const char* v : {"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"})
    env_.unset(v);
  auto only_http = make_curl_client(trusting("", true));
  r = only_http->send(call("GET", plain.url("/")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("port " + std::to_string(proxy.port)), std::string::npos) << r.error;
  EXPECT_EQ(plain.accepts(), 1);
}

TEST_F(http_test, malformed_calls_are_errors_not_exceptions) {
  test_server server(echo_method);
  auto client = make_curl_client({});
  http_reply r = client->send(call("GE T", server.url("/")));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("method"), std::string::npos) << r.error;
  r = client->send(call("GET", server.url("/"), "", {{"X-Evil", "a\r\nX-Injected: 1"}}));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("X-Evil"), std::string::npos) << r.error;
  r = client->send(call("HEAD", server.url("/"), "body"));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error, "");
  r = client->send(call("GET", "not a url at all"));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error, "");
  r = client->send(call("GET", "ftp://127.0.0.1/file"));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.error.find("protocol"), std::string::npos) << r.error;
  EXPECT_EQ(server.requests().size(), 0U);
  // The client still works afterwards.
  EXPECT_EQ(client->send(call("GET", server.url("/"))).status, 200);
}

}  // namespace
}  // namespace tandem::ctl::cloud
