/* ie-static-client: a statically linked test client (tests/netns/ied_steer.sh). LD_PRELOAD
 * cannot reach it, so only ied's cgroup policies (BPF sock_create + routing) can steer it;
 * the test checks it is steered exactly when it runs in a policy's cgroup.
 *
 *   ie-static-client tcp ADDR PORT         connect, send "GET / HTTP/1.0", print the reply
 *                                          and then "peer ADDR PORT" from getpeername()
 *   ie-static-client udp ADDR PORT MSG     unconnected sendto(), one recvfrom() (2 s), print
 *                                          the reply and "from ADDR PORT"
 *   ie-static-client mark                  print the SO_MARK of a new TCP socket
 * Exit 0 on success, 1 on a network failure (message on stderr), 2 on usage errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int parse(const char* a, const char* p, struct sockaddr_storage* ss, socklen_t* len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in* s4 = (struct sockaddr_in*)ss;
  struct sockaddr_in6* s6 = (struct sockaddr_in6*)ss;
  const int port = atoi(p);
  if (port <= 0 || port > 65535) return -1;
  if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
    s4->sin_family = AF_INET;
    s4->sin_port = htons((unsigned short)port);
    *len = sizeof *s4;
    return 0;
  }
  if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((unsigned short)port);
    *len = sizeof *s6;
    return 0;
  }
  return -1;
}

static void print_addr(const char* what, const struct sockaddr_storage* ss) {
  char buf[INET6_ADDRSTRLEN] = "?";
  unsigned port = 0;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in* s4 = (const struct sockaddr_in*)ss;
    inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof buf);
    port = ntohs(s4->sin_port);
  } else if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6* s6 = (const struct sockaddr_in6*)ss;
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    port = ntohs(s6->sin6_port);
  }
  printf("%s %s %u\n", what, buf, port);
}

static int timeouts(int fd) {
  struct timeval tv = {2, 0};
  return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
         setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int main(int argc, char** argv) {
  struct sockaddr_storage ss, peer;
  socklen_t len = 0, plen = sizeof peer;
  char buf[4096];
  if (argc == 2 && strcmp(argv[1], "mark") == 0) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    unsigned mark = 0;
    socklen_t ml = sizeof mark;
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_MARK, &mark, &ml) != 0) {
      perror("socket/SO_MARK");
      return 1;
    }
    printf("0x%08x\n", mark);
    return 0;
  }
  if (argc == 4 && strcmp(argv[1], "tcp") == 0 && parse(argv[2], argv[3], &ss, &len) == 0) {
    const int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || timeouts(fd) || connect(fd, (struct sockaddr*)&ss, len) != 0) {
      perror("tcp connect");
      return 1;
    }
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    if (send(fd, req, sizeof req - 1, 0) != (ssize_t)(sizeof req - 1)) {
      perror("send");
      return 1;
    }
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
      fwrite(buf, 1, (size_t)n, stdout);
    if (n < 0) {
      perror("recv");
      return 1;
    }
    if (getpeername(fd, (struct sockaddr*)&peer, &plen) != 0) {
      /* The server closed first: getpeername may fail with ENOTCONN; report it. */
      printf("\npeer none %d\n", errno);
    } else {
      printf("\n");
      print_addr("peer", &peer);
    }
    close(fd);
    return 0;
  }
  if (argc == 5 && strcmp(argv[1], "udp") == 0 && parse(argv[2], argv[3], &ss, &len) == 0) {
    const int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || timeouts(fd)) {
      perror("udp socket");
      return 1;
    }
    const size_t ml = strlen(argv[4]);
    if (sendto(fd, argv[4], ml, 0, (struct sockaddr*)&ss, len) != (ssize_t)ml) {
      perror("sendto");
      return 1;
    }
    const ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr*)&peer, &plen);
    if (n < 0) {
      perror("recvfrom");
      return 1;
    }
    buf[n] = 0;
    printf("%s\n", buf);
    print_addr("from", &peer);
    close(fd);
    return 0;
  }
  fprintf(stderr, "usage: ie-static-client tcp ADDR PORT | udp ADDR PORT MSG | mark\n");
  return 2;
}
