// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the transport frame decoder and every body decoder, on any bytes. A frame
// that decodes must re-encode to the same bytes (the format has one encoding per value).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dataplane/transport/frame.h"

using namespace tandem::dp::transport;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

void check_body(const decoded_frame& d) {
  std::vector<uint8_t> again(d.body.size() + 64);
  switch (d.header.type) {
    case frame_type::data: {
      data_body b;
      if (!decode_data(d.body, b)) return;
      require(b.bytes.data() >= d.body.data() &&
              b.bytes.data() + b.bytes.size() <= d.body.data() + d.body.size());
      require(encode_data(again, b) == static_cast<int>(d.body.size()));
      break;
    }
    case frame_type::ack: {
      ack_body b;
      if (!decode_ack(d.body, b)) return;
      require(b.count >= 1 && b.count <= max_ack_ranges);
      require(encode_ack(again, b) == static_cast<int>(d.body.size()));
      break;
    }
    case frame_type::hello:
    case frame_type::hello_ack:
    case frame_type::confirm: {
      hello_body b;
      if (!decode_hello(d.body, b)) return;
      require(encode_hello(again, b) == static_cast<int>(d.body.size()));
      break;
    }
    case frame_type::keepalive: {
      keepalive_body b;
      if (!decode_keepalive(d.body, b)) return;
      require(encode_keepalive(again, b) == static_cast<int>(d.body.size()));
      break;
    }
    case frame_type::close: {
      close_reason r;
      if (!decode_close(d.body, r)) return;
      require(encode_close(again, r) == static_cast<int>(d.body.size()));
      break;
    }
  }
  require(std::memcmp(again.data(), d.body.data(), d.body.size()) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  decoded_frame d;
  if (decode_frame({data, size}, d) != decode_error::none) return 0;
  require(header_len + d.body.size() + d.tag.size() == size);
  check_body(d);
  // The header re-encodes to the same bytes.
  std::vector<uint8_t> copy(data, data + size);
  require(finish_frame(copy, d.header) == static_cast<int>(size));
  require(std::memcmp(copy.data(), data, size) == 0);
  return 0;
}
