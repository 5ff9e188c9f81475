// SPDX-License-Identifier: Apache-2.0
// The socket port: a non-blocking kernel UDP socket driven by sendmmsg/recvmmsg, with UDP GSO/GRO.
#include "dataplane/port/socket_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <system_error>

namespace tandem::dp {
namespace {

constexpr uint32_t max_udp_payload = 65507;   // 65535 less the IPv4 and UDP headers
constexpr size_t stage_size = 65536;          // one GRO message: at most 64 KiB
constexpr unsigned max_gso_segments = 64;     // UDP_MAX_SEGMENTS on every kernel with GSO
constexpr unsigned max_syscall_batch = 1024;  // UIO_MAXIOV: sendmmsg/recvmmsg's vlen limit
constexpr size_t cmsg_space = 64;  // room for UDP_SEGMENT on send, UDP_GRO + SO_RXQ_OVFL on recv

[[noreturn]] void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), "socket port: " + what);
}

uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // what std::chrono::steady_clock reads
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<uint64_t>(ts.tv_nsec);
}

sockaddr_in to_sockaddr(const udp_addr& a) noexcept {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(a.port);
  sin.sin_addr.s_addr = htonl(a.ip.value);
  return sin;
}

udp_addr from_sockaddr(const sockaddr_storage& ss) noexcept {
  sockaddr_in sin{};
  std::memcpy(&sin, &ss, sizeof sin);
  return udp_addr{ipv4_addr{ntohl(sin.sin_addr.s_addr)}, ntohs(sin.sin_port)};
}

uint8_t* map_memory(size_t bytes, const char* what) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw_errno(errno, std::string("mmap ") + what);
  return static_cast<uint8_t*>(p);
}

// Reads the cmsgs of one received message: the GRO segment size (0 when not coalesced) and the
// socket's cumulative drop counter.
void parse_rx_cmsgs(msghdr& mh, int& gro_size, uint64_t& kernel_drops) noexcept {
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
      std::memcpy(&gro_size, CMSG_DATA(c), sizeof gro_size);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
      uint32_t drops = 0;
      std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
      kernel_drops = drops;
    }
  }
}

bool transient(int err) noexcept {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EINTR;
}

}  // namespace

// One message of a GRO recvmmsg. Its first max_payload bytes land in a pool buffer (`head`),
// the rest in a staging buffer that has max_payload bytes of room in front, so that a coalesced
// message can be made contiguous there. A single datagram is handed out in `head` without a copy;
// the segments after the first of a coalesced message are copied out of `mem`.
struct socket_port::stage {
  uint8_t* mem = nullptr;  // staging: max_payload bytes of room, then the iovec's 64 KiB
  dgram* head = nullptr;   // the first datagram, not handed out yet
  uint32_t len = 0;        // bytes of the message
  uint32_t seg = 0;        // segment size
  uint32_t off = 0;        // next segment to copy out of mem
  uint32_t segs_left = 0;  // including head
  udp_addr peer;
  uint64_t rx_ns = 0;
};

socket_port::socket_port(const socket_port_options& opts)
    : max_payload_(opts.max_payload),
      nbuf_(opts.buffers),
      max_burst_(opts.max_burst),
      gso_max_seg_(opts.max_payload) {
  if (opts.max_payload == 0 || opts.max_payload > max_udp_payload) {
    throw std::invalid_argument("socket port: max_payload " + std::to_string(opts.max_payload) +
                                " is not in 1.." + std::to_string(max_udp_payload));
  }
  if (opts.buffers == 0) throw std::invalid_argument("socket port: buffers must be at least 1");
  if (opts.max_burst == 0 || opts.max_burst > max_syscall_batch) {
    throw std::invalid_argument("socket port: max_burst " + std::to_string(opts.max_burst) +
                                " is not in 1.." + std::to_string(max_syscall_batch));
  }
  if (opts.enable_gro && (opts.gro_batch == 0 || opts.gro_batch > max_syscall_batch)) {
    throw std::invalid_argument("socket port: gro_batch " + std::to_string(opts.gro_batch) +
                                " is not in 1.." + std::to_string(max_syscall_batch));
  }
  try {
    setup_socket(opts);

    stride_ = (static_cast<size_t>(max_payload_) + 63) / 64 * 64;
    payload_bytes_ = stride_ * nbuf_;
    payload_ = map_memory(payload_bytes_, "datagram pool");
    dgrams_ = std::make_unique<dgram[]>(nbuf_);
    free_stack_ = std::make_unique<dgram*[]>(nbuf_);
    for (unsigned i = 0; i < nbuf_; ++i) {
      dgram& d = dgrams_[i];
      d.data = payload_ + stride_ * i;
      d.cap = max_payload_;
      d.port_ctx = this;
      free_stack_[nbuf_ - 1 - i] = &d;  // the first alloc() gets slot 0
    }
    free_top_ = nbuf_;

    const unsigned nmsg = std::max(max_burst_, gro_ ? opts.gro_batch : 0U);
    msgs_ = std::make_unique<mmsghdr[]>(nmsg);
    iovs_ =
        std::make_unique<iovec[]>(2 * static_cast<size_t>(nmsg));  // GRO receive: two per message
    names_ = std::make_unique<sockaddr_storage[]>(nmsg);
    cmsgs_ = std::make_unique<uint8_t[]>(nmsg * cmsg_space);
    msg_first_ = std::make_unique<unsigned[]>(max_burst_ + 1);
    rx_bufs_ = std::make_unique<dgram*[]>(nmsg);

    if (gro_) {
      gro_batch_ = opts.gro_batch;
      stage_bytes_ = stage_size * gro_batch_;
      stage_mem_ = map_memory(stage_bytes_, "GRO staging");
      stages_ = std::make_unique<stage[]>(gro_batch_);
      for (unsigned i = 0; i < gro_batch_; ++i)
        stages_[i].mem = stage_mem_ + stage_size * i;
    }
  } catch (...) {
    if (fd_ >= 0) ::close(fd_);
    if (payload_) ::munmap(payload_, payload_bytes_);
    if (stage_mem_) ::munmap(stage_mem_, stage_bytes_);
    throw;
  }
}

socket_port::~socket_port() {
  if (fd_ >= 0) ::close(fd_);
  if (payload_) ::munmap(payload_, payload_bytes_);
  if (stage_mem_) ::munmap(stage_mem_, stage_bytes_);
}

void socket_port::setup_socket(const socket_port_options& opts) {
  const std::string where = opts.local.to_string();
  fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw_errno(errno, "socket() for " + where);

  if (!opts.device.empty()) {
    if (::setsockopt(fd_, SOL_SOCKET, SO_BINDTODEVICE, opts.device.data(),
                     static_cast<socklen_t>(opts.device.size())) != 0) {
      throw_errno(errno, "SO_BINDTODEVICE " + opts.device + " for " + where);
    }
  }
  const auto set_buffer = [&](int force_opt, int opt, int bytes, const char* what) {
    if (bytes <= 0) return;
    if (::setsockopt(fd_, SOL_SOCKET, force_opt, &bytes, sizeof bytes) == 0) return;
    if (::setsockopt(fd_, SOL_SOCKET, opt, &bytes, sizeof bytes) != 0) {
      throw_errno(errno, std::string(what) + " " + std::to_string(bytes) + " for " + where);
    }
  };
  set_buffer(SO_SNDBUFFORCE, SO_SNDBUF, opts.sndbuf, "SO_SNDBUF");
  set_buffer(SO_RCVBUFFORCE, SO_RCVBUF, opts.rcvbuf, "SO_RCVBUF");

  const int one = 1;
  (void)::setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);  // a counter, optional
  if (opts.enable_gso) {
    // Setting the socket-wide segment size to 0 (no default GSO) succeeds only where the kernel
    // has UDP_SEGMENT; each send then asks for it per message.
    const int zero = 0;
    gso_ = ::setsockopt(fd_, IPPROTO_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  }
  if (opts.enable_gro) {
    gro_ = ::setsockopt(fd_, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0;
  }

  const sockaddr_in sin = to_sockaddr(opts.local);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&sin), sizeof sin) != 0) {
    throw_errno(errno, "bind " + where);
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    throw_errno(errno, "getsockname for " + where);
  }
  local_ = from_sockaddr(ss);
}

unsigned socket_port::alloc(dgram** bufs, unsigned n) {
  const unsigned k = std::min(n, free_top_);
  for (unsigned i = 0; i < k; ++i) {
    dgram* d = free_stack_[--free_top_];
    d->data = payload_ + stride_ * static_cast<size_t>(d - dgrams_.get());
    d->len = 0;
    d->peer = {};
    d->rx_ns = 0;
    bufs[i] = d;
  }
  return k;
}

void socket_port::release(dgram* d) noexcept {
  assert(d->port_ctx == this && "dgram freed to a port that did not make it");
  assert(free_top_ < nbuf_ && "more buffers freed than the pool holds");
  free_stack_[free_top_++] = d;
}

void socket_port::free(dgram** bufs, unsigned n) {
  for (unsigned i = 0; i < n; ++i)
    release(bufs[i]);
}

unsigned socket_port::send(dgram** bufs, unsigned n) {
  const unsigned asked = n;
  unsigned taken = 0;
  // Leading datagrams that cannot be sent are taken and dropped; one later in the burst ends it.
  while (taken < n && bufs[taken]->len > max_payload_) {
    ++sstats_.tx_oversize;
    release(bufs[taken++]);
  }
  bufs += taken;
  n = std::min(n - taken, max_burst_);

  for (;;) {
    // One message per run of datagrams to the same peer with the same length (the last may be
    // shorter): a UDP_SEGMENT message with one iovec per datagram.
    unsigned nmsg = 0;
    unsigned i = 0;
    while (i < n && bufs[i]->len <= max_payload_) {
      const dgram* first = bufs[i];
      const uint32_t seg = first->len;
      unsigned count = 1;
      uint32_t bytes = seg;
      if (gso_ && seg > 0 && seg <= gso_max_seg_) {
        while (i + count < n && count < max_gso_segments) {
          const dgram* d = bufs[i + count];
          if (d->peer != first->peer || d->len > seg || d->len == 0 ||
              bytes + d->len > max_udp_payload) {
            break;
          }
          bytes += d->len;
          ++count;
          if (d->len < seg) break;  // a shorter one ends the run
        }
      }
      mmsghdr& m = msgs_[nmsg];
      m = {};
      const sockaddr_in sin = to_sockaddr(first->peer);
      std::memcpy(&names_[nmsg], &sin, sizeof sin);
      m.msg_hdr.msg_name = &names_[nmsg];
      m.msg_hdr.msg_namelen = sizeof sin;
      for (unsigned j = 0; j < count; ++j)
        iovs_[i + j] = {bufs[i + j]->data, bufs[i + j]->len};
      m.msg_hdr.msg_iov = &iovs_[i];
      m.msg_hdr.msg_iovlen = count;
      if (count > 1) {
        uint8_t* space = &cmsgs_[nmsg * cmsg_space];
        m.msg_hdr.msg_control = space;
        m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr);
        c->cmsg_level = IPPROTO_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        const auto gso_size = static_cast<uint16_t>(seg);
        std::memcpy(CMSG_DATA(c), &gso_size, sizeof gso_size);
      }
      msg_first_[nmsg++] = i;
      i += count;
    }
    msg_first_[nmsg] = i;
    if (nmsg == 0) break;

    ++sstats_.tx_syscalls;
    const int r = ::sendmmsg(fd_, msgs_.get(), nmsg, 0);
    if (r < 0) {
      const int err = errno;
      if (transient(err)) break;
      const unsigned first_count = msg_first_[1];
      if ((err == EINVAL || err == EMSGSIZE || err == EIO) && first_count > 1) {
        // The kernel will not segment this: a segment plus headers above the path MTU
        // (EMSGSIZE, EINVAL before 6.x), or no checksum offload (EIO). Group only shorter
        // datagrams from now on (none after EIO) and resend this burst: one more syscall, once
        // per distinct limit.
        const uint32_t seg = bufs[0]->len;
        gso_max_seg_ = err == EIO ? 0 : std::min(gso_max_seg_, seg - 1);
        if (gso_max_seg_ == 0) gso_ = false;
        ++sstats_.gso_fallbacks;
        continue;
      }
      // A hard error for the first message (EPERM from a firewall, unreachable network...):
      // its datagrams are taken and dropped, as a lossy link would; the rest stay the caller's.
      sstats_.tx_errors += first_count;
      for (unsigned j = 0; j < first_count; ++j)
        release(bufs[j]);
      taken += first_count;
      break;
    }
    const auto sent_msgs = static_cast<unsigned>(r);
    for (unsigned mi = 0; mi < sent_msgs; ++mi) {
      const unsigned count = msg_first_[mi + 1] - msg_first_[mi];
      if (count > 1) {
        ++sstats_.gso_msgs;
        sstats_.gso_dgrams += count;
      }
    }
    const unsigned sent = msg_first_[sent_msgs];
    for (unsigned j = 0; j < sent; ++j) {
      stats_.tx_bytes += bufs[j]->len;
      release(bufs[j]);
    }
    stats_.tx_dgrams += sent;
    taken += sent;
    break;
  }
  stats_.tx_full += asked - taken;
  return taken;
}

unsigned socket_port::recv(dgram** bufs, unsigned n) {
  if (gro_) return recv_staged(bufs, n);
  return recv_direct(bufs, std::min(n, max_burst_));
}

// Without GRO: recvmmsg straight into pool buffers.
unsigned socket_port::recv_direct(dgram** bufs, unsigned n) {
  const unsigned k = std::min(n, free_top_);
  if (k == 0) return 0;
  for (unsigned j = 0; j < k; ++j) {
    dgram* d = free_stack_[--free_top_];
    d->data = payload_ + stride_ * static_cast<size_t>(d - dgrams_.get());
    rx_bufs_[j] = d;
    iovs_[j] = {d->data, max_payload_};
    mmsghdr& m = msgs_[j];
    m = {};
    m.msg_hdr.msg_name = &names_[j];
    m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    m.msg_hdr.msg_iov = &iovs_[j];
    m.msg_hdr.msg_iovlen = 1;
    m.msg_hdr.msg_control = &cmsgs_[j * cmsg_space];
    m.msg_hdr.msg_controllen = cmsg_space;
  }
  ++sstats_.rx_syscalls;
  const int r = ::recvmmsg(fd_, msgs_.get(), k, 0, nullptr);
  const unsigned got = r > 0 ? static_cast<unsigned>(r) : 0;
  const uint64_t now = got > 0 ? now_ns() : 0;
  unsigned out = 0;
  for (unsigned j = 0; j < got; ++j) {
    dgram* d = rx_bufs_[j];
    msghdr& mh = msgs_[j].msg_hdr;
    int gro_size = 0;
    parse_rx_cmsgs(mh, gro_size, sstats_.rx_kernel_drops);
    if ((mh.msg_flags & MSG_TRUNC) != 0) {
      ++sstats_.rx_truncated;
      ++stats_.rx_dropped;
      release(d);
      continue;
    }
    d->len = msgs_[j].msg_len;
    d->peer = from_sockaddr(names_[j]);
    d->rx_ns = now;
    stats_.rx_bytes += d->len;
    bufs[out++] = d;
  }
  for (unsigned j = k; j > got; --j)
    release(rx_bufs_[j - 1]);  // unused, back in stack order
  stats_.rx_dgrams += out;
  return out;
}

// With GRO: one recvmmsg (only once every earlier message is handed out) into a pool buffer plus
// a staging buffer per message, then hand out in order: single datagrams as they are, coalesced
// ones split into pool buffers.
unsigned socket_port::recv_staged(dgram** bufs, unsigned n) {
  unsigned out = drain_staged(bufs, n);
  if (out == n || rx_pending() || free_top_ == 0) return out;

  const unsigned vlen = std::min({gro_batch_, n - out, free_top_});
  for (unsigned j = 0; j < vlen; ++j) {
    dgram* d = free_stack_[--free_top_];
    d->data = payload_ + stride_ * static_cast<size_t>(d - dgrams_.get());
    rx_bufs_[j] = d;
    iovs_[2 * static_cast<size_t>(j)] = {d->data, max_payload_};
    iovs_[2 * static_cast<size_t>(j) + 1] = {stages_[j].mem + max_payload_, stage_size};
    mmsghdr& m = msgs_[j];
    m = {};
    m.msg_hdr.msg_name = &names_[j];
    m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    m.msg_hdr.msg_iov = &iovs_[2 * static_cast<size_t>(j)];
    m.msg_hdr.msg_iovlen = 2;
    m.msg_hdr.msg_control = &cmsgs_[j * cmsg_space];
    m.msg_hdr.msg_controllen = cmsg_space;
  }
  ++sstats_.rx_syscalls;
  const int r = ::recvmmsg(fd_, msgs_.get(), vlen, 0, nullptr);
  const unsigned got = r > 0 ? static_cast<unsigned>(r) : 0;
  for (unsigned j = vlen; j > got; --j)
    release(rx_bufs_[j - 1]);  // unused, back in order
  if (got == 0) return out;
  const uint64_t now = now_ns();
  for (unsigned j = 0; j < got; ++j) {
    stage& s = stages_[j];
    msghdr& mh = msgs_[j].msg_hdr;
    int gro_size = 0;
    parse_rx_cmsgs(mh, gro_size, sstats_.rx_kernel_drops);
    dgram* d = rx_bufs_[j];
    s.len = msgs_[j].msg_len;
    s.peer = from_sockaddr(names_[j]);
    s.rx_ns = now;
    const bool coalesced = gro_size > 0 && s.len > static_cast<uint32_t>(gro_size);
    if (!coalesced) {
      s.seg = s.len;
      s.off = 0;
      if (s.len > max_payload_ || (mh.msg_flags & MSG_TRUNC) != 0) {
        ++sstats_.rx_truncated;
        ++stats_.rx_dropped;
        release(d);
        s.head = nullptr;
        s.segs_left = 0;
        continue;
      }
      d->len = s.len;
      d->peer = s.peer;
      d->rx_ns = now;
      s.head = d;
      s.segs_left = 1;
      continue;
    }
    s.seg = static_cast<uint32_t>(gro_size);
    if ((mh.msg_flags & MSG_TRUNC) != 0) {
      // More than the staging buffer holds: keep the whole segments.
      ++sstats_.rx_truncated;
      ++stats_.rx_dropped;
      s.len -= s.len % s.seg;
    }
    s.segs_left = (s.len + s.seg - 1) / s.seg;
    ++sstats_.gro_msgs;
    sstats_.gro_dgrams += s.segs_left;
    // Make the message contiguous in the staging buffer from the first segment's end on (from
    // its start when even the first is too large to keep, so that drain_staged drops it).
    const uint32_t keep = s.seg <= max_payload_ ? s.seg : 0;
    std::memcpy(s.mem + keep, d->data + keep, max_payload_ - keep);
    s.off = keep;
    if (keep > 0) {
      d->len = keep;
      d->peer = s.peer;
      d->rx_ns = now;
      s.head = d;
    } else {
      release(d);
      s.head = nullptr;
    }
  }
  rx_stage_next_ = 0;
  rx_stage_count_ = got;
  return out + drain_staged(bufs + out, n - out);
}

unsigned socket_port::drain_staged(dgram** bufs, unsigned n) {
  unsigned out = 0;
  unsigned copied = 0;
  while (out < n && rx_stage_next_ < rx_stage_count_) {
    stage& s = stages_[rx_stage_next_];
    if (s.segs_left == 0) {
      ++rx_stage_next_;
      continue;
    }
    if (s.head != nullptr) {
      stats_.rx_bytes += s.head->len;
      bufs[out++] = s.head;
      s.head = nullptr;
      --s.segs_left;
      continue;
    }
    const uint32_t len = std::min(s.seg, s.len - s.off);
    if (len > max_payload_) {
      // Larger than this port's buffers (only a coalesced message's last segment can be
      // shorter than the others, so usually all of them): dropped.
      ++sstats_.rx_truncated;
      ++stats_.rx_dropped;
      s.off += len;
      --s.segs_left;
      continue;
    }
    if (free_top_ == 0) break;
    dgram* d = free_stack_[--free_top_];
    d->data = payload_ + stride_ * static_cast<size_t>(d - dgrams_.get());
    std::memcpy(d->data, s.mem + s.off, len);
    d->len = len;
    d->peer = s.peer;
    d->rx_ns = s.rx_ns;
    s.off += len;
    --s.segs_left;
    stats_.rx_bytes += len;
    bufs[out++] = d;
    ++copied;
  }
  while (rx_stage_next_ < rx_stage_count_ && stages_[rx_stage_next_].segs_left == 0) {
    ++rx_stage_next_;
  }
  if (rx_stage_next_ >= rx_stage_count_) rx_stage_next_ = rx_stage_count_ = 0;
  stats_.rx_dgrams += out;
  sstats_.rx_copies += copied;
  return out;
}

}  // namespace tandem::dp
