// In-memory fakes of the datagram and packet seams (ie/io/fake.hpp).
#include "ie/io/fake.hpp"

#include <cstring>

#include "ie/io/udp.hpp"

namespace ie::io {

Result<FakeDatagramPort*> FakeNetwork::add_port(const std::string& endpoint) {
  socklen_t len = 0;
  auto addr = parse_endpoint(endpoint, &len);
  if (!addr) return fail(addr.error());
  const std::string key = endpoint_str(*addr);
  if (ports_.count(key) != 0) return fail(Errc::exists, "fake port " + key);
  auto p = std::make_unique<FakeDatagramPort>();
  p->net_ = this;
  p->addr_ = *addr;
  p->addr_len_ = len;
  FakeDatagramPort* raw = p.get();
  ports_.emplace(key, std::move(p));
  return raw;
}

void FakeNetwork::deliver(const FakeDatagramPort& from, const Datagram& d) {
  auto it = ports_.find(endpoint_str(d.peer));
  if (it == ports_.end()) {
    ++unroutable;
    return;
  }
  std::uniform_real_distribution<double> u(0, 1);
  if (u(rng_) < drop) {
    ++dropped;
    return;
  }
  // GSO: split into segments as the kernel would.
  const std::size_t seg = d.segment_size > 0 ? d.segment_size : d.len;
  const int copies = u(rng_) < duplicate ? 2 : 1;
  auto& inbox = it->second->inbox_;
  for (std::size_t off = 0; off < d.len || (d.len == 0 && off == 0); off += seg) {
    const std::size_t n = std::min(seg, d.len - off);
    for (int c = 0; c < copies; ++c) {
      FakeDatagramPort::Item item{Bytes(d.buf.data() + off, d.buf.data() + off + n), from.addr_,
                                  from.addr_len_};
      if (!inbox.empty() && u(rng_) < reorder) {
        inbox.insert(inbox.end() - 1, std::move(item));
      } else {
        inbox.push_back(std::move(item));
      }
      ++delivered;
    }
    if (d.len == 0) break;
  }
}

Result<std::size_t> FakeDatagramPort::recv_batch(std::span<Datagram> out) {
  std::size_t n = 0;
  while (n < out.size() && !inbox_.empty()) {
    Item& it = inbox_.front();
    Datagram& d = out[n];
    const std::size_t len = std::min(it.bytes.size(), d.buf.size());  // truncates like UDP
    if (len > 0) std::memcpy(d.buf.data(), it.bytes.data(), len);
    d.len = len;
    d.peer = it.from;
    d.peer_len = it.from_len;
    d.segment_size = 0;
    inbox_.pop_front();
    ++n;
  }
  return n;
}

Result<std::size_t> FakeDatagramPort::send_batch(std::span<const Datagram> in) {
  for (const auto& d : in)
    net_->deliver(*this, d);
  return in.size();
}

Result<std::size_t> FakePacketDevice::read_batch(std::span<Packet> out) {
  std::size_t n = 0;
  while (n < out.size() && !to_node_.empty()) {
    const Bytes& p = to_node_.front();
    const std::size_t len = std::min(p.size(), out[n].buf.size());
    if (len > 0) std::memcpy(out[n].buf.data(), p.data(), len);
    out[n].len = len;
    to_node_.pop_front();
    ++n;
  }
  return n;
}

Result<std::size_t> FakePacketDevice::write_batch(std::span<const Packet> in) {
  for (const auto& p : in)
    from_node_.emplace_back(p.buf.data(), p.buf.data() + p.len);
  return in.size();
}

}  // namespace ie::io
