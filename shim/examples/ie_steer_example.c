/* ie_steer_example: connect to HOST PORT over TCP through an InterEdge service, send one
 * line, print the reply line. Shows both ways to ask for a service and how to fall back:
 *
 *   ie_steer_example HOST PORT [SERVICE [K=V,...]]      (default service "ip")
 *   ie_steer_example --sockopt HOST PORT [SERVICE]       (the setsockopt form only)
 *   ie_steer_example --resolve HOST                      (ie_resolve: one line per address)
 *
 * With the API (ie_set_service, linked against libinteredge) a missing ied shows up as
 * ECONNREFUSED; with the setsockopt form and no libinteredge-preload.so loaded the kernel
 * answers ENOPROTOOPT. Either way the program says why and connects without InterEdge.
 * Build: cc ie_steer_example.c -linteredge (CMake target ie_steer_example). */
#include <arpa/inet.h>
#include <errno.h>
#include <interedge/interedge.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int steer(int fd, int use_sockopt, const char* service, const char* options) {
  if (use_sockopt) {
    struct ie_service_info info;
    memset(&info, 0, sizeof info);
    info.size = sizeof info;
    snprintf(info.service, sizeof info.service, "%s", service);
    return setsockopt(fd, SOL_INTEREDGE, IE_SERVICE, &info, sizeof info);
  }
  struct ie_options opts;
  ie_options_init(&opts);
  if (options != NULL && ie_options_parse(&opts, options) != 0) return -1;
  return ie_set_service(fd, service, &opts);
}

/* Prints what ie_resolve says of each address of host:
 *   10.2.0.2 interedge=yes sns=dom2.sn1 source=dns */
static int resolve(const char* host) {
  struct ie_peer peers[8];
  size_t n = 0;
  memset(peers, 0, sizeof peers);
  peers[0].size = sizeof peers[0];
  if (ie_resolve(host, NULL, AF_UNSPEC, peers, 8, &n) != 0) {
    fprintf(stderr, "%s: %s\n", host, errno == ENOENT ? "name does not resolve" : strerror(errno));
    return 1;
  }
  for (size_t i = 0; i < n; ++i) {
    const struct ie_peer* p = &peers[i];
    char text[INET6_ADDRSTRLEN] = "?";
    if (p->addr.ss_family == AF_INET)
      inet_ntop(AF_INET, &((const struct sockaddr_in*)&p->addr)->sin_addr, text, sizeof text);
    else
      inet_ntop(AF_INET6, &((const struct sockaddr_in6*)&p->addr)->sin6_addr, text, sizeof text);
    printf("%s interedge=%s sns=", text, p->interedge ? "yes" : "no");
    for (unsigned k = 0; k < p->sn_count; ++k)
      printf("%s%s", k > 0 ? "," : "", p->sns[k]);
    printf("%s source=%s\n", p->sn_count == 0 ? "-" : "", p->source);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--resolve") == 0) return resolve(argv[2]);
  int use_sockopt = argc > 1 && strcmp(argv[1], "--sockopt") == 0;
  char** a = argv + use_sockopt;
  int n = argc - use_sockopt;
  if (n < 3 || n > 5) {
    fprintf(stderr, "usage: %s [--sockopt] HOST PORT [SERVICE [K=V,...]] | --resolve HOST\n",
            argv[0]);
    return 2;
  }
  const char* service = n > 3 ? a[3] : "ip";
  const char* options = n > 4 ? a[4] : NULL;

  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(a[1], a[2], &hints, &res);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", a[1], gai_strerror(rc));
    return 1;
  }
  int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd < 0) {
    perror("socket");
    freeaddrinfo(res);
    return 1;
  }

  /* Before connect(): the whole flow takes the service's path. */
  if (steer(fd, use_sockopt, service, options) == 0) {
    printf("steered: service %s\n", service);
  } else if (errno == ENOPROTOOPT) {
    printf("not steered: no InterEdge shim in this process (ENOPROTOOPT), connecting directly\n");
  } else if (errno == ECONNREFUSED || errno == EACCES) {
    printf("not steered: ied is not reachable (%s), connecting directly\n", strerror(errno));
  } else {
    printf("not steered: %s, connecting directly\n", strerror(errno));
  }

  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    perror("connect");
    freeaddrinfo(res);
    close(fd);
    return 1;
  }
  freeaddrinfo(res);
  static const char line[] = "hello from ie_steer_example\n";
  if (send(fd, line, sizeof line - 1, MSG_NOSIGNAL) < 0) {
    perror("send");
    close(fd);
    return 1;
  }
  char buf[4096];
  size_t got = 0;
  while (got < sizeof buf - 1) {
    ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
    if (r <= 0) break;
    got += (size_t)r;
    if (memchr(buf, '\n', got) != NULL) break;
  }
  buf[got] = '\0';
  printf("reply: %s%s", buf, got > 0 && buf[got - 1] == '\n' ? "" : "\n");
  close(fd);
  return 0;
}
