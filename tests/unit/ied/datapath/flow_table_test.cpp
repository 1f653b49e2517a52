// FlowTable: insert/lookup/replace/erase, LRU eviction when full, idle expiry, listing order,
// no heap allocation on lookup/insert/erase/expire once built, and a differential test
// against a naive reference (std::map + use order list) over random operations.
#include "ie/ied/flow_table.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <list>
#include <map>
#include <new>
#include <random>

#include "test_packets.hpp"

// Counts heap allocations in this test binary, to prove the hot operations make none.
namespace {
std::atomic<std::size_t> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace ie::ied {
namespace {

using namespace std::chrono_literals;

FlowKey key(std::uint32_t n) {
  FlowKey k;
  k.version = 4;
  k.proto = kProtoUdp;
  store_be32(k.src.data(), 0x0a000000u | (n >> 16));
  store_be32(k.dst.data(), 0x0a800001u);
  k.src_port = static_cast<std::uint16_t>(n);
  k.dst_port = 53;
  return k;
}

FlowEntry entry(std::uint64_t conn) {
  FlowEntry e;
  e.peer = test::A("192.0.2.1");
  e.service = 1;
  e.via = FlowVia::sn;
  e.conn_id = conn;
  return e;
}

const FlowClock::time_point t0{};

TEST(FlowTable, InsertLookupReplaceErase) {
  FlowTable t(8, 1);
  EXPECT_EQ(t.capacity(), 8u);
  EXPECT_EQ(t.lookup(key(1), t0), nullptr);
  FlowEntry* e = t.insert(key(1), entry(11), t0);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->conn_id, 11u);
  EXPECT_EQ(t.size(), 1u);
  FlowEntry* l = t.lookup(key(1), t0 + 5s);
  ASSERT_EQ(l, e);
  EXPECT_EQ(l->last_seen, t0 + 5s);
  l->packets_out += 3;
  EXPECT_EQ(t.find(key(1))->packets_out, 3u);
  // Replace keeps one entry.
  auto r = entry(12);
  r.via = FlowVia::direct;
  t.insert(key(1), r, t0 + 6s);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.find(key(1))->conn_id, 12u);
  EXPECT_EQ(t.find(key(1))->via, FlowVia::direct);
  EXPECT_STREQ(flow_via_name(FlowVia::direct), "direct");
  EXPECT_TRUE(t.erase(key(1)));
  EXPECT_FALSE(t.erase(key(1)));
  EXPECT_EQ(t.find(key(1)), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTable, EvictsLeastRecentlyUsedWhenFull) {
  FlowTable t(3, 2);
  t.insert(key(1), entry(1), t0);
  t.insert(key(2), entry(2), t0 + 1s);
  t.insert(key(3), entry(3), t0 + 2s);
  ASSERT_NE(t.lookup(key(1), t0 + 3s), nullptr);  // 2 is now the least recently used
  t.insert(key(4), entry(4), t0 + 4s);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(t.find(key(2)), nullptr);
  EXPECT_NE(t.find(key(1)), nullptr);
  EXPECT_NE(t.find(key(3)), nullptr);
  EXPECT_NE(t.find(key(4)), nullptr);
  const auto l = t.list();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].entry.conn_id, 4u);  // most recent first
  EXPECT_EQ(l[1].entry.conn_id, 1u);
  EXPECT_EQ(l[2].entry.conn_id, 3u);
}

TEST(FlowTable, ExpiresIdleFlows) {
  FlowTable t(16, 3);
  for (std::uint32_t i = 0; i < 10; ++i)
    t.insert(key(i), entry(i), t0 + std::chrono::seconds(i));
  t.lookup(key(0), t0 + 20s);              // refreshed
  EXPECT_EQ(t.expire(t0 + 25s, 20s), 5u);  // last_seen 1..5 (<= 5s) go; 0 was refreshed
  EXPECT_EQ(t.size(), 5u);
  EXPECT_NE(t.find(key(0)), nullptr);
  for (std::uint32_t i = 1; i <= 5; ++i)
    EXPECT_EQ(t.find(key(i)), nullptr) << i;
  for (std::uint32_t i = 6; i < 10; ++i)
    EXPECT_NE(t.find(key(i)), nullptr) << i;
  EXPECT_EQ(t.expire(t0 + 25s, 20s), 0u);
  EXPECT_EQ(t.expire(t0 + 100s, 1s), 5u);
  EXPECT_EQ(t.size(), 0u);
  // Freed nodes are reusable up to capacity.
  for (std::uint32_t i = 0; i < 16; ++i)
    t.insert(key(100 + i), entry(i), t0);
  EXPECT_EQ(t.size(), 16u);
  EXPECT_EQ(t.evictions(), 0u);
}

TEST(FlowTable, HotOperationsDoNotAllocate) {
  FlowTable t(1024, 4);
  const std::size_t before = g_allocations.load();
  for (std::uint32_t i = 0; i < 5000; ++i) {
    t.insert(key(i), entry(i), t0 + std::chrono::milliseconds(i));
    FlowEntry* e = t.lookup(key(i / 2), t0 + std::chrono::milliseconds(i));
    if (e) e->packets_out++;
    if (i % 7 == 0) t.erase(key(i - 3));
    if (i % 100 == 0) t.expire(t0 + std::chrono::milliseconds(i), 500ms);
  }
  std::size_t visited = 0;
  t.for_each([&](const FlowKey&, const FlowEntry&) { ++visited; });
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_EQ(visited, t.size());
  EXPECT_LE(t.size(), 1024u);
}

// Naive reference: map for contents, list for use order (front = most recent).
struct Reference {
  std::size_t cap;
  std::map<std::uint32_t, std::pair<std::uint64_t, FlowClock::time_point>> m;
  std::list<std::uint32_t> order;
  void touch(std::uint32_t k) {
    order.remove(k);
    order.push_front(k);
  }
  void insert(std::uint32_t k, std::uint64_t v, FlowClock::time_point now) {
    if (!m.count(k) && m.size() == cap) {
      m.erase(order.back());
      order.pop_back();
    }
    m[k] = {v, now};
    touch(k);
  }
  bool lookup(std::uint32_t k, FlowClock::time_point now) {
    auto it = m.find(k);
    if (it == m.end()) return false;
    it->second.second = now;
    touch(k);
    return true;
  }
  bool erase(std::uint32_t k) {
    if (!m.erase(k)) return false;
    order.remove(k);
    return true;
  }
  std::size_t expire(FlowClock::time_point now, FlowClock::duration idle) {
    std::size_t n = 0;
    for (auto it = m.begin(); it != m.end();) {
      if (it->second.second + idle <= now) {
        order.remove(it->first);
        it = m.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }
};

TEST(FlowTable, MatchesANaiveReference) {
  for (std::size_t cap : {1u, 2u, 7u, 64u}) {
    FlowTable t(cap, 5);
    Reference ref{cap, {}, {}};
    std::mt19937 rng(static_cast<unsigned>(cap));
    auto now = t0;
    for (int step = 0; step < 20000; ++step) {
      now += std::chrono::milliseconds(rng() % 3);  // ties happen on purpose
      const std::uint32_t k = rng() % (cap * 3 + 2);
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2: {
          const std::uint64_t v = rng();
          t.insert(key(k), entry(v), now);
          ref.insert(k, v, now);
          break;
        }
        case 3:
        case 4:
        case 5: {
          FlowEntry* e = t.lookup(key(k), now);
          ASSERT_EQ(e != nullptr, ref.lookup(k, now)) << step;
          if (e) {
            ASSERT_EQ(e->conn_id, ref.m[k].first);
          }
          break;
        }
        case 6:
          ASSERT_EQ(t.erase(key(k)), ref.erase(k)) << step;
          break;
        default: {
          const auto idle = std::chrono::milliseconds(rng() % 40);
          ASSERT_EQ(t.expire(now, idle), ref.expire(now, idle)) << step;
          break;
        }
      }
      ASSERT_EQ(t.size(), ref.m.size()) << step;
    }
    // Same contents in the same use order.
    const auto l = t.list();
    ASSERT_EQ(l.size(), ref.order.size());
    auto it = ref.order.begin();
    for (const auto& rec : l) {
      EXPECT_EQ(rec.key, key(*it));
      EXPECT_EQ(rec.entry.conn_id, ref.m[*it].first);
      ++it;
    }
  }
}

}  // namespace
}  // namespace ie::ied
