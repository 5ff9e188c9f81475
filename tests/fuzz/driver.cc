// SPDX-License-Identifier: Apache-2.0
// Standalone fuzz driver for builds without libFuzzer: corpus replay, then seeded mutations.
//
//   fuzz_x [--runs=N] [--seed=S] [--max_len=L] [--artifact_prefix=P] [corpus dirs or files...]
//
// Every corpus file (directories are walked recursively, in sorted order) is run once as is.
// Then N inputs are derived from the corpus by seeded random mutations (bit flips, byte sets,
// interesting values, arithmetic, insertions, erasures, truncation, splices, fresh random
// buffers) and run; the same seed and corpus always produce the same inputs. Each input is
// copied into an exactly sized heap block so ASan catches reads past its end. Crashes are
// reported by ASan / UBSan (the dev preset aborts on the first report); before the process dies
// the input is written to <artifact_prefix>crash-<run>. Single-dash flags (-runs=N) are accepted
// too, so a libFuzzer command line works; other libFuzzer flags are ignored with a warning.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);
// Present when ASan or UBSan is linked in; called by the sanitizer just before it exits.
extern "C" __attribute__((weak)) void __sanitizer_set_death_callback(void (*callback)());

namespace tandem::fuzz {
namespace {

using input = std::vector<uint8_t>;

// splitmix64: tiny, fast and identical on every platform (unlike std:: distributions).
class rng {
 public:
  explicit rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform-enough in [0, n); n == 0 gives 0.
  size_t below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(next() % n); }
  bool one_in(size_t n) { return below(n) == 0; }
  uint8_t byte() { return static_cast<uint8_t>(next()); }

 private:
  uint64_t state_;
};

// ---- The input being run, for the crash hooks --------------------------------------------

struct current_run {
  const uint8_t* data = nullptr;
  size_t size = 0;
  uint64_t index = 0;
  char path[4096] = {};  // artifact prefix, "crash-" and the run index are appended
  size_t prefix_len = 0;
};
current_run g_current;

// Async-signal-safe: open/write/close and hand-rolled number formatting only.
void write_crash_input() {
  char* const p = g_current.path;
  size_t at = g_current.prefix_len;
  char digits[24];
  size_t n = 0;
  uint64_t v = g_current.index;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0 && at + 1 < sizeof g_current.path)
    p[at++] = digits[--n];
  p[at] = '\0';
  const int fd = ::open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t done = 0;
  while (done < g_current.size) {
    const ssize_t w = ::write(fd, g_current.data + done, g_current.size - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::close(fd);
  static constexpr char msg[] = "tandem-fuzz: crashing input written to ";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)!::write(STDERR_FILENO, p, at);
  (void)!::write(STDERR_FILENO, "\n", 1);
}

void on_sanitizer_death() {
  write_crash_input();
}

void on_fatal_signal(int sig) {
  write_crash_input();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void install_crash_hooks() {
  if (__sanitizer_set_death_callback != nullptr) {
    // The sanitizers own SIGSEGV and friends; let them report, then save the input.
    __sanitizer_set_death_callback(on_sanitizer_death);
    return;
  }
  for (const int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
    ::signal(sig, on_fatal_signal);
}

void run_one(const uint8_t* data, size_t size, uint64_t index) {
  // An exactly sized block, so a one-byte overread is a heap-buffer-overflow under ASan.
  auto* copy = new uint8_t[size == 0 ? 1 : size];
  if (size != 0) std::memcpy(copy, data, size);
  g_current.data = copy;
  g_current.size = size;
  g_current.index = index;
  LLVMFuzzerTestOneInput(copy, size);
  g_current.data = nullptr;
  delete[] copy;
}

// ---- Mutations ---------------------------------------------------------------------------

class mutator {
 public:
  mutator(uint64_t seed, size_t max_len, const std::vector<input>& corpus)
      : rng_(seed), max_len_(max_len), corpus_(corpus) {}

  // A new input: a corpus entry or an earlier mutant, changed by one to eight mutations.
  input next() {
    input data;
    // Mostly a corpus entry, sometimes an earlier mutant, rarely nothing at all.
    if (!recent_.empty() && rng_.one_in(4)) {
      data = recent_[rng_.below(recent_.size())];
    } else if (!corpus_.empty() && !rng_.one_in(64)) {
      data = corpus_[rng_.below(corpus_.size())];
    }
    // One mutation half of the time, two a quarter, ... up to eight: small steps stay deep in
    // the input's structure, large ones explore.
    size_t rounds = 1;
    while (rounds < 8 && rng_.one_in(2))
      ++rounds;
    for (size_t i = 0; i < rounds; ++i)
      mutate(data);
    if (data.size() > max_len_) data.resize(max_len_);
    // Keep some mutants around so that mutations stack across generations.
    if (rng_.one_in(8)) {
      if (recent_.size() < recent_cap) {
        recent_.push_back(data);
      } else {
        recent_[rng_.below(recent_cap)] = data;
      }
    }
    return data;
  }

 private:
  static constexpr size_t recent_cap = 256;

  void mutate(input& d) {
    switch (rng_.below(13)) {
      case 0:
        flip_bit(d);
        break;
      case 1:
        set_byte(d);
        break;
      case 2:
        set_interesting(d);
        break;
      case 3:
        add_delta(d);
        break;
      case 4:
        insert_bytes(d);
        break;
      case 5:
        erase_bytes(d);
        break;
      case 6:
        truncate(d);
        break;
      case 7:
        splice(d);
        break;
      case 8:
        insert_from_corpus(d);
        break;
      case 9:
        copy_within(d);
        break;
      case 10:
        rng_.one_in(4) ? fresh_random(d) : set_byte(d);
        break;
      case 11:
        extend(d);
        break;
      default:
        flip_bit(d);
        break;
    }
  }

  void flip_bit(input& d) {
    if (d.empty()) return insert_bytes(d);
    d[rng_.below(d.size())] ^= static_cast<uint8_t>(1U << rng_.below(8));
  }

  void set_byte(input& d) {
    if (d.empty()) return insert_bytes(d);
    d[rng_.below(d.size())] = rng_.byte();
  }

  // Boundary values, written big- or little-endian as 1, 2 or 4 bytes (length fields!).
  void set_interesting(input& d) {
    static constexpr uint32_t values[] = {
        0,      1,      2,      4,      7,      8,      14,    16,         20,         28,
        42,     60,     64,     0x7f,   0x80,   0xff,   0x100, 0x0800,     0x0806,     0x4000,
        0x2000, 0x1fff, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x45,  0x7fffffff, 0x80000000, 0xffffffff};
    const size_t width = size_t{1} << rng_.below(3);
    if (d.size() < width) return set_byte(d);
    const uint32_t v = values[rng_.below(std::size(values))];
    const size_t at = rng_.below(d.size() - width + 1);
    const bool big = rng_.one_in(2) || width == 1;
    for (size_t i = 0; i < width; ++i) {
      const size_t shift = 8 * (big ? width - 1 - i : i);
      d[at + i] = static_cast<uint8_t>(v >> shift);
    }
  }

  // Small +/- on a byte or a big-endian 16-bit word.
  void add_delta(input& d) {
    const auto delta = static_cast<int>(rng_.below(71)) - 35;
    if (d.size() >= 2 && rng_.one_in(2)) {
      const size_t at = rng_.below(d.size() - 1);
      const auto w = static_cast<uint16_t>(((d[at] << 8) | d[at + 1]) + delta);
      d[at] = static_cast<uint8_t>(w >> 8);
      d[at + 1] = static_cast<uint8_t>(w);
      return;
    }
    if (d.empty()) return insert_bytes(d);
    uint8_t& b = d[rng_.below(d.size())];
    b = static_cast<uint8_t>(b + delta);
  }

  void insert_bytes(input& d) {
    const size_t n = 1 + rng_.below(rng_.one_in(4) ? 64 : 4);
    const size_t at = rng_.below(d.size() + 1);
    const bool repeat = rng_.one_in(2);
    const uint8_t fill = rng_.byte();
    input ins(n);
    for (auto& b : ins)
      b = repeat ? fill : rng_.byte();
    d.insert(d.begin() + static_cast<ptrdiff_t>(at), ins.begin(), ins.end());
  }

  void erase_bytes(input& d) {
    if (d.empty()) return;
    const size_t at = rng_.below(d.size());
    const size_t n = 1 + rng_.below(std::min<size_t>(d.size() - at, rng_.one_in(4) ? 64 : 4));
    d.erase(d.begin() + static_cast<ptrdiff_t>(at), d.begin() + static_cast<ptrdiff_t>(at + n));
  }

  void truncate(input& d) { d.resize(rng_.below(d.size() + 1)); }

  // Head of this input + tail of another corpus entry.
  void splice(input& d) {
    if (corpus_.empty()) return erase_bytes(d);
    const input& other = corpus_[rng_.below(corpus_.size())];
    const size_t cut = rng_.below(d.size() + 1);
    const size_t from = rng_.below(other.size() + 1);
    d.resize(cut);
    d.insert(d.end(), other.begin() + static_cast<ptrdiff_t>(from), other.end());
  }

  // A chunk of another corpus entry, inserted or overwritten somewhere.
  void insert_from_corpus(input& d) {
    if (corpus_.empty()) return insert_bytes(d);
    const input& other = corpus_[rng_.below(corpus_.size())];
    if (other.empty()) return;
    const size_t from = rng_.below(other.size());
    const size_t n = 1 + rng_.below(other.size() - from);
    const auto first = other.begin() + static_cast<ptrdiff_t>(from);
    const auto last = first + static_cast<ptrdiff_t>(n);
    if (rng_.one_in(2) || d.size() < n) {
      d.insert(d.begin() + static_cast<ptrdiff_t>(rng_.below(d.size() + 1)), first, last);
    } else {
      std::copy(first, last, d.begin() + static_cast<ptrdiff_t>(rng_.below(d.size() - n + 1)));
    }
  }

  // Duplicates a block of the input over another place in it.
  void copy_within(input& d) {
    if (d.size() < 2) return set_byte(d);
    const size_t n = 1 + rng_.below(std::min<size_t>(d.size() / 2, 32));
    const size_t from = rng_.below(d.size() - n + 1);
    const size_t to = rng_.below(d.size() - n + 1);
    std::memmove(d.data() + to, d.data() + from, n);
  }

  void fresh_random(input& d) {
    d.resize(rng_.below(std::min<size_t>(max_len_, 2048) + 1));
    for (auto& b : d)
      b = rng_.byte();
  }

  // Zeros or random bytes appended, up to max_len (random lengths, padding, jumbo frames).
  void extend(input& d) {
    if (d.size() >= max_len_) return truncate(d);
    const size_t n = 1 + rng_.below(max_len_ - d.size());
    const bool zeros = rng_.one_in(2);
    for (size_t i = 0; i < n; ++i)
      d.push_back(zeros ? 0 : rng_.byte());
  }

  rng rng_;
  size_t max_len_;
  const std::vector<input>& corpus_;
  std::vector<input> recent_;
};

// ---- Command line and corpus -------------------------------------------------------------

struct options {
  uint64_t runs = 10000;
  uint64_t seed = 1;
  size_t max_len = 4096;
  std::string artifact_prefix = "./";
  std::vector<std::string> paths;
};

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return std::nullopt;
    v = next;
  }
  return v;
}

void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s [--runs=N] [--seed=S] [--max_len=L] [--artifact_prefix=P] "
               "[corpus dir or file...]\n"
               "  replays every corpus file, then runs N seeded mutations of the corpus\n"
               "  (defaults: runs 10000, seed 1, max_len 4096, artifact_prefix ./)\n",
               prog);
}

// Returns false (after printing why) on a bad command line.
bool parse_args(int argc, char** argv, options& opt) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.empty() || arg[0] != '-') {
      opt.paths.emplace_back(arg);
      continue;
    }
    if (arg == "-h" || arg == "--help" || arg == "-help=1") {
      usage(argv[0]);
      std::exit(0);
    }
    arg.remove_prefix(arg.starts_with("--") ? 2 : 1);
    const size_t eq = arg.find('=');
    const std::string_view key = arg.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    if (key == "artifact_prefix") {
      opt.artifact_prefix = std::string(value);
      continue;
    }
    if (key != "runs" && key != "seed" && key != "max_len") {
      std::fprintf(stderr, "tandem-fuzz: ignoring unsupported flag %s\n", argv[i]);
      continue;
    }
    const auto v = parse_u64(value);
    if (!v) {
      std::fprintf(stderr, "tandem-fuzz: %s needs a non-negative integer\n", argv[i]);
      return false;
    }
    if (key == "runs") opt.runs = *v;
    if (key == "seed") opt.seed = *v;
    if (key == "max_len") opt.max_len = std::max<size_t>(*v, 1);
  }
  return true;
}

bool read_file(const std::filesystem::path& p, input& out) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return !f.bad();
}

// Loads every regular file under the given paths, sorted by path for determinism.
bool load_corpus(const std::vector<std::string>& paths, std::vector<input>& corpus) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& arg : paths) {
    std::error_code ec;
    const fs::path p(arg);
    if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
      continue;
    }
    if (!fs::is_directory(p, ec)) {
      std::fprintf(stderr, "tandem-fuzz: %s: no such file or directory\n", arg.c_str());
      return false;
    }
    std::vector<fs::path> found;
    for (fs::recursive_directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec)) found.push_back(it->path());
    }
    if (ec) {
      std::fprintf(stderr, "tandem-fuzz: %s: %s\n", arg.c_str(), ec.message().c_str());
      return false;
    }
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  for (const auto& f : files) {
    input data;
    if (!read_file(f, data)) {
      std::fprintf(stderr, "tandem-fuzz: cannot read %s\n", f.c_str());
      return false;
    }
    corpus.push_back(std::move(data));
  }
  return true;
}

std::string program_name(const char* argv0) {
  const std::string_view s = argv0;
  const size_t slash = s.rfind('/');
  return std::string(slash == std::string_view::npos ? s : s.substr(slash + 1));
}

int run(int argc, char** argv) {
  options opt;
  if (!parse_args(argc, argv, opt)) {
    usage(argv[0]);
    return 2;
  }
  std::vector<input> corpus;
  if (!load_corpus(opt.paths, corpus)) return 2;

  const std::string prefix = opt.artifact_prefix + "crash-";
  if (prefix.size() + 24 > sizeof g_current.path) {
    std::fprintf(stderr, "tandem-fuzz: artifact prefix too long\n");
    return 2;
  }
  std::memcpy(g_current.path, prefix.data(), prefix.size());
  g_current.prefix_len = prefix.size();
  install_crash_hooks();
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);

  const auto start = std::chrono::steady_clock::now();
  uint64_t index = 0;
  size_t corpus_bytes = 0;
  for (const auto& in : corpus) {
    run_one(in.data(), in.size(), index++);
    corpus_bytes += in.size();
  }
  const auto replayed = std::chrono::steady_clock::now();

  mutator mut(opt.seed, opt.max_len, corpus);
  size_t largest = 0;
  for (uint64_t i = 0; i < opt.runs; ++i) {
    const input in = mut.next();
    largest = std::max(largest, in.size());
    run_one(in.data(), in.size(), index++);
  }
  const auto end = std::chrono::steady_clock::now();

  const double total_s = std::chrono::duration<double>(end - start).count();
  const double replay_s = std::chrono::duration<double>(replayed - start).count();
  const double execs = total_s > 0 ? static_cast<double>(index) / total_s : 0.0;
  std::printf(
      "tandem-fuzz: %s: %zu corpus inputs (%zu bytes) replayed in %.3f s, %llu mutations "
      "(seed %llu, max_len %zu, largest %zu) in %.3f s total, %.0f execs/s, no crashes\n",
      program_name(argv[0]).c_str(), corpus.size(), corpus_bytes, replay_s,
      static_cast<unsigned long long>(opt.runs), static_cast<unsigned long long>(opt.seed),
      opt.max_len, largest, total_s, execs);
  return 0;
}

}  // namespace
}  // namespace tandem::fuzz

int main(int argc, char** argv) {
  return tandem::fuzz::run(argc, argv);
}
