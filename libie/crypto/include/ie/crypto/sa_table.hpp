// The PSP security associations a node's datapath holds, fed by the association protocol's
// events (ie/crypto/association.hpp): receive SAs by SPI, each with its replay window, and
// one send SA per peer with its IV counter. Sealing and opening whole ILP packets in place,
// with every rejection returned as a DropReason and counted.
//
// Packet path (one datagram, buffer owned by the caller throughout):
//   send: [headroom 16][ILP header][inner] -> seal_ilp writes the PSP header in front and the
//         tag after -> the caller sends the datagram.
//   recv: datagram -> open: parse PSP header -> SA by SPI -> replay check -> AES-GCM open in
//         place -> replay update (only now: the packet is authentic) -> parse ILP header.
//
// Not thread-safe: one table per worker (share-nothing); no allocation per packet.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "ie/crypto/psp.hpp"
#include "ie/crypto/replay_window.hpp"
#include "ie/util/bytes.hpp"
#include "ie/util/counter.hpp"
#include "ie/util/result.hpp"
#include "ie/wire/drop_reason.hpp"
#include "ie/wire/ilp.hpp"

namespace ie::crypto {

using SaDropCounters = CounterArray<wire::DropReason, wire::kDropReasonCount>;

struct OpenedIlp {
  std::uint32_t spi = 0;
  std::uint64_t owner = 0;  // who the SA was installed for (e.g. the association's PeerId)
  wire::IlpView ilp;        // header, TLVs and inner packet, pointing into the buffer
};

class RxSaTable {
 public:
  // Installs (or replaces) the receive SA for spi, owned by `owner`.
  Result<void> install(std::uint32_t spi, const psp::Key& key, std::uint64_t owner);
  void retire(std::uint32_t spi);
  // Forgets every SA of one owner (the peer died or closed). Costs that owner's SAs, not the
  // table's: an SN losing many of its 100,000 pipes at once must not walk the table per pipe.
  void retire_owner(std::uint64_t owner);
  bool has(std::uint32_t spi) const { return sas_.count(spi) != 0; }
  std::size_t size() const { return sas_.size(); }

  // Opens an ILP data packet in place (the plaintext overwrites the ciphertext). On success
  // fills out and returns DropReason::none; otherwise the packet is dropped, counted and
  // the buffer's ciphertext may have been wiped.
  wire::DropReason open_ilp(ByteSpan datagram, OpenedIlp* out);

  const SaDropCounters& drops() const { return drops_; }

 private:
  struct Entry {
    psp::Sa sa;
    ReplayWindow window;
    std::uint64_t owner;
  };
  wire::DropReason count(wire::DropReason r) {
    drops_.add(r);
    return r;
  }
  void unlist(std::uint64_t owner, std::uint32_t spi);

  std::unordered_map<std::uint32_t, Entry> sas_;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> by_owner_;  // owner -> its SPIs
  SaDropCounters drops_;
};

// The IV counter several TxSas share when several threads seal for one send SA (an SN's
// workers): each TxSa keeps its own AES-GCM context, and every IV comes from one atomic
// fetch_add, so no IV is ever used twice under the key. Starts at 1.
using SharedIvCounter = std::shared_ptr<std::atomic<std::uint64_t>>;
SharedIvCounter make_shared_iv_counter();

class TxSa {
 public:
  // A send SA with its own IV counter (one thread seals).
  static Result<TxSa> create(std::uint32_t spi, const psp::Key& key);
  // A send SA whose IVs come from `next_iv`, shared with other TxSas for the same SPI and key
  // (each used by one thread). next_iv must not be null.
  static Result<TxSa> create(std::uint32_t spi, const psp::Key& key, SharedIvCounter next_iv);

  std::uint32_t spi() const { return spi_; }
  // IVs taken so far: by this TxSa, or with a shared counter by all TxSas sharing it.
  std::uint64_t packets_sealed() const {
    return (shared_iv_ ? shared_iv_->load(std::memory_order_relaxed) : next_iv_) - 1;
  }

  // Seals one ILP packet in place. buf holds, from its start: 16 bytes of headroom, then
  // `ilp_and_inner` bytes (ILP header + inner packet), then room for the 16-byte tag.
  // Returns the datagram length (16 + ilp_and_inner + 16), or 0 if buf is too small.
  std::size_t seal_in_place(ByteSpan buf, std::size_t ilp_and_inner);

  // Writes header + TLVs + inner into out (after 16 bytes of headroom) and seals; returns
  // the datagram length or 0 if out is too small or the header cannot be encoded.
  std::size_t seal_ilp(const wire::IlpHeader& h, std::span<const wire::Tlv> tlvs,
                       ConstByteSpan inner, ByteSpan out);

 private:
  TxSa(std::uint32_t spi, psp::Sa sa, SharedIvCounter shared)
      : spi_(spi), sa_(std::move(sa)), shared_iv_(std::move(shared)) {}
  std::uint32_t spi_;
  psp::Sa sa_;
  std::uint64_t next_iv_ = 1;  // the IV is the sequence number the receiver's window checks
  SharedIvCounter shared_iv_;  // when set, IVs come from here instead of next_iv_
};

}  // namespace ie::crypto
