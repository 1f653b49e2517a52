/* shim_preload_helper: a plain-C program (libc only, no libinteredge) that shim_preload_test
 * runs with and without libinteredge-preload.so. Each command does one socket scenario and
 * prints one line per result as `name key=value ...` on stdout. Every connect to a
 * non-loopback address is non-blocking, so nothing here waits on the network.
 *
 *   sockopt SERVICE            setsockopt(SOL_INTEREDGE) then getsockopt on a TCP socket
 *   connect ADDR PORT          TCP, non-blocking connect
 *   udp-connect ADDR PORT      UDP connect + 3 sends
 *   udp-sendto ADDR PORT N     unconnected UDP, N sendto
 *   udp-sendmsg ADDR PORT      unconnected UDP, sendmsg and sendmmsg with a destination
 *   threads N ADDR PORT        N threads, 4 TCP sockets each
 *   reuse ADDR PORT            connect, close, new socket (same fd), connect
 *   dup2 ADDR PORT             connect s1; dup2(fresh socket, s1); connect s1 again
 *   loopback-nb PORT           explicit SOL_INTEREDGE + non-blocking connect to 127.0.0.1
 *   fork-exec CMD...           fork; the child execs this helper with CMD...
 *   env                        prints the IE_* variables and LD_PRELOAD */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <interedge/interedge.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long long cookie_of(int fd) {
  uint64_t c = 0;
  socklen_t len = sizeof c;
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) != 0) return 0;
  return (unsigned long long)c;
}

static socklen_t make_addr(const char* host, const char* port, struct sockaddr_storage* ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in* a4 = (struct sockaddr_in*)ss;
  struct sockaddr_in6* a6 = (struct sockaddr_in6*)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)atoi(port));
    return sizeof *a4;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)atoi(port));
    return sizeof *a6;
  }
  fprintf(stderr, "bad address %s\n", host);
  exit(2);
}

static void tcp_connect(const char* tag, const char* host, const char* port) {
  struct sockaddr_storage ss;
  socklen_t len = make_addr(host, port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rc = connect(fd, (struct sockaddr*)&ss, len);
  int e = rc == 0 ? 0 : errno;
  printf("%s fd=%d cookie=%llu rc=%d errno=%d nonblock=%d\n", tag, fd, cookie_of(fd), rc, e,
         (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
  close(fd);
}

struct thread_arg {
  const char* host;
  const char* port;
};

static void* thread_main(void* p) {
  const struct thread_arg* a = p;
  for (int i = 0; i < 4; ++i)
    tcp_connect("connect", a->host, a->port);
  return NULL;
}

static int fill_info(struct ie_service_info* info, const char* service) {
  memset(info, 0, sizeof *info);
  info->size = sizeof *info;
  return snprintf(info->service, sizeof info->service, "%s", service);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc < 2) return 2;
  const char* cmd = argv[1];
  if (strcmp(cmd, "sockopt") == 0 && argc == 3) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct ie_service_info info;
    fill_info(&info, argv[2]);
    int rc = setsockopt(fd, SOL_INTEREDGE, IE_SERVICE, &info, sizeof info);
    printf("setsockopt cookie=%llu rc=%d errno=%d\n", cookie_of(fd), rc, rc == 0 ? 0 : errno);
    memset(&info, 0, sizeof info);
    socklen_t len = sizeof info;
    rc = getsockopt(fd, SOL_INTEREDGE, IE_SERVICE, &info, &len);
    printf("getsockopt rc=%d errno=%d service=%s len=%u\n", rc, rc == 0 ? 0 : errno,
           rc == 0 ? info.service : "-", (unsigned)len);
    /* Other levels still reach the kernel. */
    int one = 1;
    rc = setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    printf("keepalive rc=%d\n", rc);
    close(fd);
    return 0;
  }
  if (strcmp(cmd, "connect") == 0 && argc == 4) {
    tcp_connect("connect", argv[2], argv[3]);
    return 0;
  }
  if ((strcmp(cmd, "udp-connect") == 0 && argc == 4) ||
      (strcmp(cmd, "udp-sendto") == 0 && argc == 5)) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(argv[2], argv[3], &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int rc = 0, e = 0;
    if (argc == 4) {
      rc = connect(fd, (struct sockaddr*)&ss, len);
      e = rc == 0 ? 0 : errno;
      for (int i = 0; i < 3 && rc == 0; ++i)
        (void)send(fd, "x", 1, MSG_DONTWAIT);
    } else {
      for (int i = 0; i < atoi(argv[4]); ++i) {
        rc = (int)sendto(fd, "x", 1, MSG_DONTWAIT, (struct sockaddr*)&ss, len);
        e = rc >= 0 ? 0 : errno;
      }
    }
    printf("%s cookie=%llu rc=%d errno=%d\n", cmd, cookie_of(fd), rc, e);
    close(fd);
    return 0;
  }
  if (strcmp(cmd, "udp-sendmsg") == 0 && argc == 4) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(argv[2], argv[3], &ss);
    char byte = 'x';
    struct iovec iov = {&byte, 1};
    for (int mm = 0; mm < 2; ++mm) {
      int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      struct mmsghdr m;
      memset(&m, 0, sizeof m);
      m.msg_hdr.msg_name = &ss;
      m.msg_hdr.msg_namelen = len;
      m.msg_hdr.msg_iov = &iov;
      m.msg_hdr.msg_iovlen = 1;
      int rc = mm ? sendmmsg(fd, &m, 1, MSG_DONTWAIT) : (int)sendmsg(fd, &m.msg_hdr, MSG_DONTWAIT);
      printf("%s cookie=%llu rc=%d errno=%d\n", mm ? "sendmmsg" : "sendmsg", cookie_of(fd), rc,
             rc >= 0 ? 0 : errno);
      close(fd);
    }
    return 0;
  }
  if (strcmp(cmd, "threads") == 0 && argc == 5) {
    int n = atoi(argv[2]);
    if (n < 1 || n > 64) return 2;
    pthread_t t[64];
    struct thread_arg a = {argv[3], argv[4]};
    for (int i = 0; i < n; ++i)
      pthread_create(&t[i], NULL, thread_main, &a);
    for (int i = 0; i < n; ++i)
      pthread_join(t[i], NULL);
    return 0;
  }
  if (strcmp(cmd, "reuse") == 0 && argc == 4) {
    tcp_connect("first", argv[2], argv[3]);
    tcp_connect("second", argv[2], argv[3]); /* the same fd number again after close */
    return 0;
  }
  if (strcmp(cmd, "dup2") == 0 && argc == 4) {
    struct sockaddr_storage ss;
    socklen_t len = make_addr(argv[2], argv[3], &ss);
    int s1 = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    (void)connect(s1, (struct sockaddr*)&ss, len);
    int s2 = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    printf("dup2 first=%llu second=%llu\n", cookie_of(s1), cookie_of(s2));
    dup2(s2, s1); /* s1 now names s2's socket, which was never steered */
    int rc = connect(s1, (struct sockaddr*)&ss, len);
    printf("again rc=%d errno=%d cookie=%llu\n", rc, rc == 0 ? 0 : errno, cookie_of(s1));
    close(s1);
    close(s2);
    return 0;
  }
  if (strcmp(cmd, "loopback-nb") == 0 && argc == 3) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct ie_service_info info;
    fill_info(&info, "ip");
    int so = setsockopt(fd, SOL_INTEREDGE, IE_SERVICE, &info, sizeof info);
    struct sockaddr_storage ss;
    socklen_t len = make_addr("127.0.0.1", argv[2], &ss);
    int rc = connect(fd, (struct sockaddr*)&ss, len);
    int e = rc == 0 ? 0 : errno;
    struct pollfd p = {fd, POLLOUT, 0};
    int ready = poll(&p, 1, 2000);
    int soerr = -1;
    socklen_t sl = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    printf("loopback setsockopt=%d rc=%d errno=%d nonblock=%d ready=%d so_error=%d\n", so, rc, e,
           (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0, ready, soerr);
    close(fd);
    return 0;
  }
  if (strcmp(cmd, "fork-exec") == 0 && argc >= 3) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      argv[1] = "child";
      execv("/proc/self/exe", argv + 1); /* argv[0] "child", then CMD... */
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("child exit=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
    return 0;
  }
  if (strcmp(cmd, "env") == 0) {
    const char* names[] = {"LD_PRELOAD",      "IE_SERVICE", "IE_OPTIONS",
                           "IE_DESTINATIONS", "IE_STRICT",  "IE_SOCKET"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; ++i) {
      const char* v = getenv(names[i]);
      printf("%s=%s\n", names[i], v != NULL ? v : "<unset>");
    }
    return 0;
  }
  fprintf(stderr, "unknown command %s\n", cmd);
  return 2;
}
