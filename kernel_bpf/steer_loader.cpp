// Loader of the steering programs: opens the embedded skeleton, loads it, attaches through
// bpf_link fds, and wraps the maps. libbpf's own messages go to ie's logger.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <mntent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "ie/bpf/steer.hpp"
#include "ie/util/log.hpp"
#include "steer.skel.h"

namespace ie::bpf {
namespace {

__attribute__((format(printf, 2, 0))) int libbpf_log(enum libbpf_print_level level, const char* fmt,
                                                     va_list args) {
  char buf[1024];
  const int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  std::size_t len = std::strlen(buf);
  while (len > 0 && buf[len - 1] == '\n')
    buf[--len] = '\0';
  if (level == LIBBPF_WARN)
    IE_LOG_WARN("libbpf: {}", buf);
  else
    IE_LOG_DEBUG("libbpf: {}", buf);
  return n;
}

void init_libbpf_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    libbpf_set_print(libbpf_log);
    // Maps are charged to the memory cgroup since Linux 5.11; raising the limit only helps
    // older kernels and is harmless here (it fails without CAP_SYS_RESOURCE: ignored).
    rlimit r{RLIM_INFINITY, RLIM_INFINITY};
    (void)::setrlimit(RLIMIT_MEMLOCK, &r);
  });
}

// libbpf (1.x) returns -errno and also sets errno; take whichever is set.
int err_of(int ret) {
  return ret < 0 ? -ret : (errno != 0 ? errno : EINVAL);
}

bool is_cgroup2(int fd) {
  struct statfs s {};
  return ::fstatfs(fd, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

ProgramInfo prog_info(const bpf_program* prog) {
  ProgramInfo out;
  out.name = bpf_program__name(prog);
  bpf_prog_info info{};
  std::uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) != 0) {
    IE_LOG_DEBUG("bpf: info of program {}: {}", out.name, std::strerror(errno));
    return out;
  }
  out.id = info.id;
  out.verified_insns = info.verified_insns;
  out.xlated_len = info.xlated_prog_len;
  out.jited_len = info.jited_prog_len;
  out.run_time_ns = info.run_time_ns;
  out.run_cnt = info.run_cnt;
  return out;
}

}  // namespace

FlowKey flow_key_v4(std::uint8_t proto, std::span<const std::uint8_t, 4> saddr, std::uint16_t sport,
                    std::span<const std::uint8_t, 4> daddr, std::uint16_t dport) {
  FlowKey k{};
  k.family = IE_FAMILY_INET;
  k.proto = proto;
  k.sport = htons(sport);
  k.dport = htons(dport);
  std::memcpy(k.saddr, saddr.data(), 4);
  std::memcpy(k.daddr, daddr.data(), 4);
  return k;
}

FlowKey flow_key_v6(std::uint8_t proto, std::span<const std::uint8_t, 16> saddr,
                    std::uint16_t sport, std::span<const std::uint8_t, 16> daddr,
                    std::uint16_t dport) {
  FlowKey k{};
  k.family = IE_FAMILY_INET6;
  k.proto = proto;
  k.sport = htons(sport);
  k.dport = htons(dport);
  std::memcpy(k.saddr, saddr.data(), 16);
  std::memcpy(k.daddr, daddr.data(), 16);
  return k;
}

Result<std::unique_ptr<Steering>> Steering::load() {
  init_libbpf_once();
  errno = 0;
  ie_steer* skel = ie_steer__open();
  if (skel == nullptr) return fail(Errc::internal, "open BPF steering skeleton", err_of(0));
  const int ret = ie_steer__load(skel);
  if (ret != 0) {
    const int e = err_of(ret);
    ie_steer__destroy(skel);
    if (e == EPERM || e == EACCES) {
      return fail(Errc::permission,
                  "load BPF steering programs: needs root (CAP_BPF and CAP_NET_ADMIN, or "
                  "CAP_SYS_ADMIN)",
                  e);
    }
    return fail(Errc::io, "load BPF steering programs (libbpf's log has the verifier output)", e);
  }
  return std::unique_ptr<Steering>(new Steering(skel));
}

Steering::~Steering() {
  for (bpf_link* l : cgroup_links_)
    bpf_link__destroy(l);
  for (int fd : tcx_links_)
    ::close(fd);
  ie_steer__destroy(skel_);
}

Result<void> Steering::attach_cgroup(const std::string& cgroup_dir) {
  const int fd = ::open(cgroup_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return fail(e == ENOENT ? Errc::not_found : Errc::io, "open cgroup directory " + cgroup_dir, e);
  }
  if (!is_cgroup2(fd)) {
    ::close(fd);
    return fail(Errc::invalid_argument,
                "attach cgroup/sock_create: " + cgroup_dir + " is not a cgroup v2 directory");
  }
  errno = 0;
  bpf_link* link = bpf_program__attach_cgroup(skel_->progs.ie_sock_create, fd);
  const int e = errno;
  ::close(fd);  // the link holds the cgroup
  if (link == nullptr)
    return fail(Errc::io, "attach cgroup/sock_create to " + cgroup_dir, e != 0 ? e : EINVAL);
  cgroup_links_.push_back(link);
  return ok();
}

Result<void> Steering::attach_tun(int ifindex) {
  const int fd = bpf_link_create(bpf_program__fd(skel_->progs.ie_tun_egress), ifindex,
                                 static_cast<bpf_attach_type>(kBpfTcxEgress), nullptr);
  if (fd < 0) {
    const int e = err_of(fd);
    const std::string what = "attach tcx egress to ifindex " + std::to_string(ifindex);
    if (e == ENODEV) return fail(Errc::not_found, what + ": no such interface", e);
    if (e == EINVAL) return fail(Errc::unsupported, what + " (tcx needs Linux 6.6+)", e);
    return fail(Errc::io, what, e);
  }
  tcx_links_.push_back(fd);
  return ok();
}

Result<void> Steering::set_cgroup_policy(std::uint64_t cgroup_id, std::uint32_t mark) {
  if (!mark_in_range(mark)) {
    return fail(Errc::invalid_argument,
                "cgroup policy mark " + std::to_string(mark) + " is outside InterEdge's range");
  }
  const ie_cgroup_policy val{mark, 0};
  const int ret = bpf_map__update_elem(skel_->maps.ie_cgroup_policy, &cgroup_id, sizeof cgroup_id,
                                       &val, sizeof val, BPF_ANY);
  if (ret != 0) {
    const int e = err_of(ret);
    return fail(e == E2BIG ? Errc::too_large : Errc::io,
                "set policy of cgroup " + std::to_string(cgroup_id), e);
  }
  return ok();
}

Result<void> Steering::remove_cgroup_policy(std::uint64_t cgroup_id) {
  const int ret =
      bpf_map__delete_elem(skel_->maps.ie_cgroup_policy, &cgroup_id, sizeof cgroup_id, 0);
  if (ret != 0) {
    const int e = err_of(ret);
    return fail(e == ENOENT ? Errc::not_found : Errc::io,
                "remove policy of cgroup " + std::to_string(cgroup_id), e);
  }
  return ok();
}

Result<std::uint64_t> Steering::cgroup_id(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    return fail(e == ENOENT ? Errc::not_found : Errc::io, "open cgroup directory " + dir, e);
  }
  struct stat st {};
  const bool cg2 = is_cgroup2(fd);
  const int sr = ::fstat(fd, &st);
  const int e = errno;
  ::close(fd);
  if (sr != 0) return fail(Errc::io, "stat " + dir, e);
  if (!cg2) return fail(Errc::invalid_argument, dir + " is not a cgroup v2 directory");
  return static_cast<std::uint64_t>(st.st_ino);
}

Result<std::string> Steering::cgroup2_mount() {
  FILE* f = ::setmntent("/proc/self/mounts", "re");
  if (f == nullptr) return fail(Errc::io, "read /proc/self/mounts", errno);
  std::string found;
  mntent ent{};
  char buf[4096];
  while (::getmntent_r(f, &ent, buf, sizeof buf) != nullptr) {
    if (std::strcmp(ent.mnt_type, "cgroup2") == 0) {
      found = ent.mnt_dir;
      break;
    }
  }
  ::endmntent(f);
  if (found.empty()) return fail(Errc::not_found, "no cgroup2 file system is mounted");
  return found;
}

std::optional<std::uint32_t> Steering::flow_mark(const FlowKey& key) const {
  ie_flow_val val{};
  if (bpf_map__lookup_elem(skel_->maps.ie_flows, &key, sizeof key, &val, sizeof val, 0) != 0)
    return std::nullopt;
  return val.mark;
}

Stats Steering::stats() const {
  Stats out;
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  // Per-CPU values are laid out at 8-byte strides; ie_stats is a multiple of 8 bytes.
  std::vector<ie_stats> per_cpu(static_cast<std::size_t>(ncpu));
  const std::uint32_t zero = 0;
  if (bpf_map__lookup_elem(skel_->maps.ie_stats, &zero, sizeof zero, per_cpu.data(),
                           per_cpu.size() * sizeof(ie_stats), 0) != 0) {
    IE_LOG_DEBUG("bpf: read ie_stats: {}", std::strerror(errno));
    return out;
  }
  for (const ie_stats& s : per_cpu) {
#define IE_STATS_SUM_(name, text) out.name += s.v[IE_STAT_##name];
    IE_BPF_STATS(IE_STATS_SUM_)
#undef IE_STATS_SUM_
  }
  return out;
}

ProgInfo Steering::info() const {
  return ProgInfo{prog_info(skel_->progs.ie_sock_create), prog_info(skel_->progs.ie_tun_egress)};
}

int Steering::tun_egress_fd_for_test() const {
  return bpf_program__fd(skel_->progs.ie_tun_egress);
}
int Steering::sock_create_fd_for_test() const {
  return bpf_program__fd(skel_->progs.ie_sock_create);
}
int Steering::flows_fd_for_test() const {
  return bpf_map__fd(skel_->maps.ie_flows);
}

}  // namespace ie::bpf
