// SPDX-License-Identifier: Apache-2.0
// Prometheus text exposition (format 0.0.4): families grouped, labels escaped.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace tandem::ctl::daemon {

using metric_labels = std::vector<std::pair<std::string, std::string>>;

// Collects samples in any order and writes each family once, with its HELP and TYPE lines
// and its samples together (the format requires a family's samples to be contiguous).
class metrics_writer {
 public:
  void gauge(const std::string& name, const std::string& help, double value,
             const metric_labels& labels);
  void counter(const std::string& name, const std::string& help, double value,
               const metric_labels& labels);
  [[nodiscard]] std::string text() const;

 private:
  struct family {
    std::string name, help, type;
    std::vector<std::string> samples;
  };
  void add(const std::string& name, const std::string& help, const char* type, double value,
           const metric_labels& labels);
  std::vector<family> families_;
};

// A label value with \, " and newline escaped.
[[nodiscard]] std::string escape_label(const std::string& v);

}  // namespace tandem::ctl::daemon
