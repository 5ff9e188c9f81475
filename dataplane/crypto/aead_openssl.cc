// SPDX-License-Identifier: Apache-2.0
// AES-GCM on OpenSSL 3 EVP: one cipher context per direction, keyed once and reused per op.
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/aead_backends.h"

namespace tandem::dp::detail {

std::string openssl_error(std::string_view what) {
  std::string msg = "OpenSSL: ";
  msg += what;
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    msg += ": ";
    msg += buf;
  }
  ERR_clear_error();
  return msg;
}

namespace {

struct ctx_deleter {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};
using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, ctx_deleter>;

// EVP lengths are ints: feed longer buffers in pieces (frames are far below this anyway).
constexpr size_t max_piece = size_t{1} << 30;

// Feeds the AAD (out == nullptr) or the text through EVP_{En,De}cryptUpdate.
template <auto Update>
bool feed(EVP_CIPHER_CTX* ctx, uint8_t* out, std::span<const uint8_t> in) noexcept {
  size_t done = 0;
  while (done < in.size()) {
    const size_t n = in.size() - done < max_piece ? in.size() - done : max_piece;
    int outl = 0;
    if (Update(ctx, out == nullptr ? nullptr : out + done, &outl, in.data() + done,
               static_cast<int>(n)) != 1) {
      return false;
    }
    done += n;
  }
  return true;
}

class openssl_aead final : public aead {
 public:
  explicit openssl_aead(std::span<const uint8_t> key)
      : aead(aead_backend::openssl, key.size()),
        enc_(EVP_CIPHER_CTX_new()),
        dec_(EVP_CIPHER_CTX_new()) {
    const EVP_CIPHER* cipher = nullptr;
    switch (key.size()) {
      case 16:
        cipher = EVP_aes_128_gcm();
        name_ = "openssl/aes-128-gcm";
        break;
      case 24:
        cipher = EVP_aes_192_gcm();
        name_ = "openssl/aes-192-gcm";
        break;
      case 32:
        cipher = EVP_aes_256_gcm();
        name_ = "openssl/aes-256-gcm";
        break;
      default:
        throw std::runtime_error("OpenSSL: AES-GCM key of " + std::to_string(key.size()) +
                                 " bytes: expected 16, 24 or 32");
    }
    if (!enc_ || !dec_) throw std::runtime_error(openssl_error("EVP_CIPHER_CTX_new"));
    // The default GCM IV length is 12 bytes, which is the only one tandem uses. The key
    // schedule is computed here once; each operation only sets the IV.
    if (EVP_EncryptInit_ex(enc_.get(), cipher, nullptr, key.data(), nullptr) != 1 ||
        EVP_DecryptInit_ex(dec_.get(), cipher, nullptr, key.data(), nullptr) != 1 ||
        EVP_CIPHER_CTX_get_iv_length(enc_.get()) != static_cast<int>(aead_nonce_size)) {
      throw std::runtime_error(openssl_error(std::string("cannot set up ") + std::string(name_)));
    }
  }

  void seal_burst(aead_op* ops, unsigned n) noexcept override {
    for (unsigned i = 0; i < n; ++i) {
      aead_op& op = ops[i];
      if (!valid(op)) continue;
      op.result = seal_one(op) ? 0 : -EIO;
    }
  }

  void open_burst(aead_op* ops, unsigned n) noexcept override {
    for (unsigned i = 0; i < n; ++i) {
      aead_op& op = ops[i];
      if (!valid(op)) continue;
      if (open_one(op)) [[likely]] {
        op.result = 0;
      } else {
        if (!op.in.empty()) std::memset(op.out, 0, op.in.size());
        op.result = -EBADMSG;
      }
    }
  }

  [[nodiscard]] std::string_view name() const noexcept override { return name_; }
  [[nodiscard]] std::string_view implementation() const noexcept override {
    return OpenSSL_version(OPENSSL_VERSION);
  }

 private:
  bool seal_one(aead_op& op) noexcept {
    EVP_CIPHER_CTX* c = enc_.get();
    uint8_t scratch[16];
    int outl = 0;
    return EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, op.nonce) == 1 &&
           feed<EVP_EncryptUpdate>(c, nullptr, op.aad) &&
           feed<EVP_EncryptUpdate>(c, op.out, op.in) &&
           EVP_EncryptFinal_ex(c, scratch, &outl) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(aead_tag_size), op.tag) ==
               1;
  }

  // False for a wrong tag (OpenSSL compares it in constant time) and for library failures.
  bool open_one(aead_op& op) noexcept {
    EVP_CIPHER_CTX* c = dec_.get();
    uint8_t scratch[16];
    int outl = 0;
    const bool ok =
        EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, op.nonce) == 1 &&
        feed<EVP_DecryptUpdate>(c, nullptr, op.aad) && feed<EVP_DecryptUpdate>(c, op.out, op.in) &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(aead_tag_size), op.tag) ==
            1 &&
        EVP_DecryptFinal_ex(c, scratch, &outl) == 1;
    if (!ok) ERR_clear_error();
    return ok;
  }

  ctx_ptr enc_;
  ctx_ptr dec_;
  std::string_view name_;
};

}  // namespace

std::unique_ptr<aead> make_openssl_aead(std::span<const uint8_t> key) {
  return std::make_unique<openssl_aead>(key);
}

}  // namespace tandem::dp::detail
