// Receive/send PSP security associations of a datapath (ie/crypto/sa_table.hpp).
#include "ie/crypto/sa_table.hpp"

#include <cstring>

namespace ie::crypto {

Result<void> RxSaTable::install(std::uint32_t spi, const psp::Key& key, std::uint64_t owner) {
  auto sa = psp::Sa::create(key, psp::Sa::Use::open);
  if (!sa) return fail(sa.error());
  if (const auto it = sas_.find(spi); it != sas_.end()) unlist(it->second.owner, spi);
  sas_.insert_or_assign(spi, Entry{std::move(*sa), ReplayWindow{}, owner});
  by_owner_[owner].push_back(spi);
  return ok();
}

void RxSaTable::unlist(std::uint64_t owner, std::uint32_t spi) {
  const auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return;
  std::erase(it->second, spi);
  if (it->second.empty()) by_owner_.erase(it);
}

void RxSaTable::retire(std::uint32_t spi) {
  const auto it = sas_.find(spi);
  if (it == sas_.end()) return;
  unlist(it->second.owner, spi);
  sas_.erase(it);
}

void RxSaTable::retire_owner(std::uint64_t owner) {
  const auto it = by_owner_.find(owner);
  if (it == by_owner_.end()) return;
  for (const std::uint32_t spi : it->second)
    sas_.erase(spi);
  by_owner_.erase(it);
}

wire::DropReason RxSaTable::open_ilp(ByteSpan datagram, OpenedIlp* out) {
  wire::PspHeader h;
  if (auto r = wire::parse_psp_header(datagram, &h); r != wire::DropReason::none) return count(r);
  if (h.next_header != wire::kIlpNextHeader || h.crypt_offset != 0) {
    return count(wire::DropReason::bad_psp_header);
  }
  auto it = sas_.find(h.spi);
  if (it == sas_.end()) return count(wire::DropReason::unknown_spi);
  Entry& e = it->second;
  if (!e.window.check(h.iv)) return count(wire::DropReason::replayed);
  std::size_t n = 0;
  const ByteSpan plain = datagram.subspan(wire::kPspHeaderLen);
  if (auto r = e.sa.open(h, datagram, plain, &n); r != wire::DropReason::none) return count(r);
  e.window.update(h.iv);  // authentic: only now may it move the window
  if (auto r = wire::parse_ilp(plain.first(n), &out->ilp); r != wire::DropReason::none)
    return count(r);
  out->spi = h.spi;
  out->owner = e.owner;
  return wire::DropReason::none;
}

SharedIvCounter make_shared_iv_counter() {
  return std::make_shared<std::atomic<std::uint64_t>>(1);
}

Result<TxSa> TxSa::create(std::uint32_t spi, const psp::Key& key) {
  auto sa = psp::Sa::create(key, psp::Sa::Use::seal);
  if (!sa) return fail(sa.error());
  return TxSa(spi, std::move(*sa), nullptr);
}

Result<TxSa> TxSa::create(std::uint32_t spi, const psp::Key& key, SharedIvCounter next_iv) {
  if (!next_iv) return fail(Errc::invalid_argument, "TxSa: null shared IV counter");
  auto sa = psp::Sa::create(key, psp::Sa::Use::seal);
  if (!sa) return fail(sa.error());
  return TxSa(spi, std::move(*sa), std::move(next_iv));
}

std::size_t TxSa::seal_in_place(ByteSpan buf, std::size_t ilp_and_inner) {
  if (buf.size() < wire::kPspHeaderLen + ilp_and_inner + wire::kPspTagLen) return 0;
  wire::PspHeader h;
  h.next_header = wire::kIlpNextHeader;
  h.spi = spi_;
  if (shared_iv_) {
    // Taken before sealing: the IV is spent even if sealing fails, so no other sharer can
    // ever be handed the same one.
    h.iv = shared_iv_->fetch_add(1, std::memory_order_relaxed);
    return sa_.seal(h, buf.subspan(wire::kPspHeaderLen, ilp_and_inner), buf);
  }
  h.iv = next_iv_;
  const std::size_t n = sa_.seal(h, buf.subspan(wire::kPspHeaderLen, ilp_and_inner), buf);
  if (n != 0) ++next_iv_;
  return n;
}

std::size_t TxSa::seal_ilp(const wire::IlpHeader& h, std::span<const wire::Tlv> tlvs,
                           ConstByteSpan inner, ByteSpan out) {
  if (out.size() < wire::kPspHeaderLen + wire::kPspTagLen) return 0;
  const ByteSpan body =
      out.subspan(wire::kPspHeaderLen, out.size() - wire::kPspHeaderLen - wire::kPspTagLen);
  const std::size_t hlen = wire::encode_ilp(h, tlvs, body);
  if (hlen == 0 || body.size() - hlen < inner.size()) return 0;
  if (!inner.empty()) std::memmove(body.data() + hlen, inner.data(), inner.size());
  return seal_in_place(out, hlen + inner.size());
}

}  // namespace ie::crypto
