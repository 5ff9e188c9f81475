// SPDX-License-Identifier: Apache-2.0
// Prometheus text exposition (format 0.0.4).
#include "control/daemon/metrics.h"

#include <cmath>
#include <cstdio>

namespace tandem::ctl::daemon {

std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void metrics_writer::gauge(const std::string& name, const std::string& help, double value,
                           const metric_labels& labels) {
  add(name, help, "gauge", value, labels);
}

void metrics_writer::counter(const std::string& name, const std::string& help, double value,
                             const metric_labels& labels) {
  add(name, help, "counter", value, labels);
}

void metrics_writer::add(const std::string& name, const std::string& help, const char* type,
                         double value, const metric_labels& labels) {
  family* f = nullptr;
  for (family& x : families_)
    if (x.name == name) f = &x;
  if (f == nullptr) {
    families_.push_back({name, help, type, {}});
    f = &families_.back();
  }
  std::string line = name;
  if (!labels.empty()) {
    line += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) line += ',';
      line += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
    }
    line += '}';
  }
  char num[40];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(num, sizeof num, "%.0f", value);
  } else {
    std::snprintf(num, sizeof num, "%.9g", value);
  }
  line += ' ';
  line += num;
  f->samples.push_back(std::move(line));
}

std::string metrics_writer::text() const {
  std::string out;
  for (const family& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const std::string& s : f.samples)
      out += s + "\n";
  }
  return out;
}

}  // namespace tandem::ctl::daemon
