// Key files (key_file.hpp): an X25519 private key as one line of base64, in a file only its
// owner may read. Everything that held key bytes (read buffers, base64 text) is wiped.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "ie/crypto/key_file.hpp"
#include "ie/util/secret.hpp"

namespace ie::crypto {
namespace {

constexpr std::size_t kB64Len = 44;  // sodium_base64_ENCODED_LEN(32, ORIGINAL) - 1

// Wipes a buffer when it goes out of scope.
template <std::size_t N>
struct WipedBuf {
  char b[N] = {};
  ~WipedBuf() { secure_wipe(b, N); }
};

int sodium_ready() {
  static const int r = sodium_init();
  return r;
}

// Decodes exactly kB64Len characters of padded standard base64 into 32 bytes.
bool decode_key(std::string_view text, std::uint8_t* out) {
  if (text.size() != kB64Len || sodium_ready() < 0) return false;
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out, 32, text.data(), text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return false;
  return len == 32 && end == text.data() + text.size();
}

Result<void> write_all(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(Errc::io, "write " + path, errno);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return ok();
}

}  // namespace

std::string key_to_base64(const noise::PublicKey& k) {
  char buf[kB64Len + 1] = {};
  (void)sodium_ready();
  sodium_bin2base64(buf, sizeof buf, k.data(), k.size(), sodium_base64_VARIANT_ORIGINAL);
  return std::string(buf, kB64Len);
}

Result<noise::PublicKey> key_from_base64(std::string_view text) {
  noise::PublicKey k{};
  if (!decode_key(text, k.data()))
    return fail(Errc::parse, "not a base64 32-byte key (44 characters of standard base64)");
  if (k == noise::PublicKey{}) return fail(Errc::parse, "all zero: not a public key");
  return k;
}

Result<noise::KeyPair> load_private_key(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int e = errno;
    return fail(e == ENOENT ? Errc::not_found : (e == EACCES ? Errc::permission : Errc::io),
                "private key " + path, e);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(Errc::io, "private key " + path, errno);
  if (!S_ISREG(st.st_mode))
    return fail(Errc::invalid_argument, "private key " + path + ": not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Errc::permission, "private key " + path + ": mode " + mode +
                                      " lets group/other access it; run chmod 600 " + path);
  }
  // One byte more than the longest valid content, so trailing junk is seen.
  WipedBuf<kB64Len + 2> buf;
  std::size_t n = 0;
  while (n < sizeof buf.b) {
    const ssize_t r = ::read(fd, buf.b + n, sizeof buf.b - n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(Errc::io, "read private key " + path, errno);
    }
    if (r == 0) break;
    n += static_cast<std::size_t>(r);
  }
  std::size_t text_len = n;
  if (text_len == kB64Len + 1 && buf.b[kB64Len] == '\n') text_len = kB64Len;
  Key32 priv;
  if (text_len != kB64Len || !decode_key(std::string_view(buf.b, text_len), priv.data()))
    return fail(Errc::parse,
                "private key " + path + ": expected one line with the base64 of a 32-byte key");
  return noise::KeyPair::from_private(priv.span());
}

Result<void> write_private_key(const std::string& path, const noise::KeyPair& kp) {
  if (path.empty()) return fail(Errc::invalid_argument, "private key: empty path");
  if (sodium_ready() < 0) return fail(Errc::internal, "sodium_init");
  WipedBuf<kB64Len + 2> text;
  sodium_bin2base64(text.b, kB64Len + 1, kp.priv.data(), kp.priv.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  text.b[kB64Len] = '\n';

  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // O_CREAT | O_EXCL, mode 0600
  if (fd < 0) return fail(errno == EACCES ? Errc::permission : Errc::io, "create " + tmp, errno);
  auto abandon = [&](Errc code, const std::string& what, int e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail(code, what, e);
  };
  if (::fchmod(fd, 0600) != 0) return abandon(Errc::io, "chmod " + tmp, errno);
  if (auto w = write_all(fd, text.b, kB64Len + 1, tmp); !w)
    return abandon(w.error().code, w.error().context, w.error().sys_errno);
  if (::fsync(fd) != 0) return abandon(Errc::io, "fsync " + tmp, errno);
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    return fail(Errc::io, "close " + tmp, e);
  }
  // link() instead of rename(): atomic, and it refuses to replace an existing key.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    if (e == EEXIST) return fail(Errc::exists, "private key " + path + " already exists", e);
    return fail(e == EACCES ? Errc::permission : Errc::io, "link " + path, e);
  }
  ::unlink(tmp.c_str());
  // Make the new name durable too.
  const auto slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return ok();
}

}  // namespace ie::crypto
