// SPDX-License-Identifier: Apache-2.0
// The libcurl http_client: one easy handle per client, reset and reconfigured for every call so
// that its connection cache (and the TLS session on it) outlives the call.
#include <algorithm>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include <curl/curl.h>

#include "control/cloud/http.h"

namespace tandem::ctl::cloud {
namespace {

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::string_view trim(std::string_view s) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && blank(s.back()))
    s.remove_suffix(1);
  return s;
}

// A method is an HTTP token; anything else would let the caller write into the request line.
bool valid_method(std::string_view m) {
  if (m.empty()) return false;
  return std::all_of(m.begin(), m.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
  });
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != s.npos;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Once per process and before the first easy handle: curl_global_init is not thread-safe
    // with respect to other libcurl calls. A throw here leaves the flag unset, so a later
    // client tries again.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

template <typename T>
void set(CURL* c, CURLoption option, T value, const char* name) {
  const CURLcode rc = curl_easy_setopt(c, option, value);
  if (rc != CURLE_OK) {
    throw std::runtime_error(std::string("libcurl ") + name + ": " + curl_easy_strerror(rc));
  }
}
// Names the option in the error.
#define TANDEM_CURL_SET(c, option, value) set(c, option, value, #option)

struct slist_free {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using slist = std::unique_ptr<curl_slist, slist_free>;

void append(slist& list, const std::string& line) {
  curl_slist* head = curl_slist_append(list.get(), line.c_str());
  if (head == nullptr) throw std::bad_alloc();
  (void)list.release();  // head is the same list, one item longer
  list.reset(head);
}

// What the callbacks fill. They run inside curl_easy_perform (C code), so they must not throw:
// a failure is remembered here and the transfer aborted by returning a short count.
struct sink {
  http_reply* reply;
  std::exception_ptr failure;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* s = static_cast<sink*>(user);
  const size_t n = size * count;
  try {
    s->reply->body.append(data, n);
  } catch (...) {
    s->failure = std::current_exception();
    return 0;
  }
  return n;
}

// Called once per header line, status lines and the blank line that ends a block included.
// Every status line starts a new block (an interim 1xx answer, a proxy's CONNECT answer), so
// the headers left at the end are those of the final response.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* s = static_cast<sink*>(user);
  const size_t n = size * count;
  try {
    const std::string_view line(data, n);
    auto& headers = s->reply->headers;
    if (line.starts_with("HTTP/")) {
      headers.clear();
    } else if (line.starts_with(" ") || line.starts_with("\t")) {
      // obs-fold: a continuation of the previous header's value (RFC 9112, section 5.2).
      if (!headers.empty() && !trim(line).empty()) {
        headers.back().second.append(" ").append(trim(line));
      }
    } else if (const size_t colon = line.find(':'); colon != line.npos) {
      std::string name(trim(line.substr(0, colon)));
      std::transform(name.begin(), name.end(), name.begin(), ascii_lower);
      headers.emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
    }
  } catch (...) {
    s->failure = std::current_exception();
    return 0;
  }
  return n;
}

class curl_client final : public http_client {
 public:
  explicit curl_client(const http_settings& settings) : settings_(settings) {
    if (!settings_.ca_file.empty() && !std::ifstream(settings_.ca_file).is_open()) {
      throw std::runtime_error("CA bundle " + settings_.ca_file + " cannot be read");
    }
    global_init();
    curl_ = curl_easy_init();
    if (curl_ == nullptr) throw std::runtime_error("curl_easy_init failed");
    try {
      // Fails now, not at the first send, when this libcurl lacks an option we rely on.
      apply_settings(settings_.total_timeout);
    } catch (...) {
      curl_easy_cleanup(curl_);
      throw;
    }
  }

  ~curl_client() override { curl_easy_cleanup(curl_); }

  http_reply send(const http_call& call) override {
    try {
      return perform(call);
    } catch (const std::exception& e) {
      return failure(std::string("HTTP exchange failed: ") + e.what());
    } catch (...) {
      return failure("HTTP exchange failed: unknown error");
    }
  }

 private:
  static http_reply failure(std::string why) {
    http_reply r;
    r.error = std::move(why);
    return r;
  }

  // Everything that does not depend on the call. curl_easy_reset puts every option back to its
  // default but keeps the connection cache, the DNS cache and TLS sessions.
  void apply_settings(std::chrono::milliseconds total) {
    curl_easy_reset(curl_);
    // 0 means "no limit" to libcurl: a zero or negative timeout is the shortest one instead.
    const auto ms = [](std::chrono::milliseconds t) {
      return static_cast<long>(std::max<std::chrono::milliseconds::rep>(t.count(), 1));
    };
    TANDEM_CURL_SET(curl_, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: clients live on worker threads
    TANDEM_CURL_SET(curl_, CURLOPT_CONNECTTIMEOUT_MS, ms(settings_.connect_timeout));
    TANDEM_CURL_SET(curl_, CURLOPT_TIMEOUT_MS, ms(total));
    TANDEM_CURL_SET(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    TANDEM_CURL_SET(curl_, CURLOPT_FOLLOWLOCATION, 0L);
    TANDEM_CURL_SET(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
    TANDEM_CURL_SET(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!settings_.ca_file.empty()) {
      TANDEM_CURL_SET(curl_, CURLOPT_CAINFO, settings_.ca_file.c_str());
    }
    // An empty proxy string turns off libcurl's own reading of the *_proxy variables.
    if (!settings_.use_proxy) TANDEM_CURL_SET(curl_, CURLOPT_PROXY, "");
  }

  http_reply perform(const http_call& call) {
    if (!valid_method(call.method)) return failure("invalid HTTP method \"" + call.method + "\"");
    if (call.method == "HEAD" && !call.body.empty()) return failure("a HEAD request has no body");
    bool caller_content_type = false;
    slist headers;
    for (const auto& [name, value] : call.headers) {
      if (name.empty() || has_line_break(name) || has_line_break(value) ||
          name.find(':') != name.npos) {
        return failure("invalid header \"" + name + "\"");
      }
      caller_content_type |= iequals(name, "content-type");
      // "Name:" with nothing after it would remove the header; "Name;" sends it empty.
      append(headers, value.empty() ? name + ";" : name + ": " + value);
    }
    append(headers, "Expect:");  // no 100-continue round trip before large bodies

    apply_settings(call.total_timeout.value_or(settings_.total_timeout));
    TANDEM_CURL_SET(curl_, CURLOPT_URL, call.url.c_str());

    // A body goes out with a Content-Length, also an empty one for the methods that carry
    // content (a PUT of an empty object must say Content-Length: 0); GET, DELETE and the like
    // without a body send no Content-Length (RFC 9110, section 8.6).
    const bool carries_body = !call.body.empty() || call.method == "POST" || call.method == "PUT" ||
                              call.method == "PATCH";
    if (call.method == "HEAD") {
      TANDEM_CURL_SET(curl_, CURLOPT_NOBODY, 1L);
    } else if (call.method == "GET" && !carries_body) {
      TANDEM_CURL_SET(curl_, CURLOPT_HTTPGET, 1L);
    } else {
      TANDEM_CURL_SET(curl_, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    }
    if (carries_body) {
      TANDEM_CURL_SET(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                      static_cast<curl_off_t>(call.body.size()));
      TANDEM_CURL_SET(curl_, CURLOPT_POSTFIELDS, call.body.data());
      // POSTFIELDS adds "Content-Type: application/x-www-form-urlencoded" unless told not to;
      // the request carries only the content type its caller chose (and signed).
      if (!caller_content_type) append(headers, "Content-Type:");
    }
    TANDEM_CURL_SET(curl_, CURLOPT_HTTPHEADER, headers.get());

    http_reply reply;
    sink out{&reply, nullptr};
    char detail[CURL_ERROR_SIZE] = {};
    TANDEM_CURL_SET(curl_, CURLOPT_ERRORBUFFER, detail);
    TANDEM_CURL_SET(curl_, CURLOPT_WRITEFUNCTION, on_body);
    TANDEM_CURL_SET(curl_, CURLOPT_WRITEDATA, &out);
    TANDEM_CURL_SET(curl_, CURLOPT_HEADERFUNCTION, on_header);
    TANDEM_CURL_SET(curl_, CURLOPT_HEADERDATA, &out);

    const CURLcode rc = curl_easy_perform(curl_);
    // The error buffer and the header list die with this call: the handle must not keep
    // pointing at them until the next reset.
    curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    if (out.failure) std::rethrow_exception(out.failure);
    if (rc != CURLE_OK) {
      http_reply r;
      r.error = curl_easy_strerror(rc);
      const std::string_view why = trim(detail);
      if (!why.empty() && why != r.error) r.error.append(": ").append(why);
      r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
      return r;
    }
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
    return reply;
  }

  http_settings settings_;
  CURL* curl_ = nullptr;
};

#undef TANDEM_CURL_SET

}  // namespace

std::string http_reply::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return "";
}

std::unique_ptr<http_client> make_curl_client(const http_settings& settings) {
  return std::make_unique<curl_client>(settings);
}

}  // namespace tandem::ctl::cloud
