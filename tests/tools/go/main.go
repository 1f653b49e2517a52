// ie-go-client: a Go test client for ied's cgroup steering policies
// (tests/netns/ied_steer_go.sh, docs/testing.md). Built with CGO_ENABLED=0 it is a static
// binary that makes its system calls itself, without libc, so neither LD_PRELOAD (the shim)
// nor anything in libc can steer it: only the kernel's cgroup/sock_create program can.
//
//	ie-go-client [-timeout D] tcp ADDR:PORT MARKER      connect, send "MARKER\n", read one line
//	ie-go-client [-timeout D] udp ADDR:PORT MARKER      unconnected socket: WriteTo, ReadFrom
//	ie-go-client [-timeout D] udpconn ADDR:PORT MARKER  connected socket: Write, Read
//
// Each mode prints, one per line: "MODE mark 0x%08x" (the SO_MARK of the very socket it
// used), "MODE peer ADDR:PORT" (getpeername(), or the source address of the UDP reply) and
// "MODE reply TEXT". Every step is bounded by -timeout (default 5s). Exit status 0 on
// success, 1 on a network failure (message on stderr), 2 on usage errors.
// Standard library only: it builds without network access.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "ie-go-client: "+format+"\n", args...)
	os.Exit(1)
}

// mark reads SO_MARK from the socket under c (syscall.RawConn: no copy of the fd).
func mark(c syscall.Conn) uint32 {
	rc, err := c.SyscallConn()
	if err != nil {
		fail("SyscallConn: %v", err)
	}
	var m int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		m, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK)
	}); err != nil {
		fail("Control: %v", err)
	}
	if serr != nil {
		fail("getsockopt(SO_MARK): %v", serr)
	}
	return uint32(m)
}

func runTCP(addr, marker string, timeout time.Duration) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		fail("tcp connect %s: %v", addr, err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	fmt.Printf("tcp mark 0x%08x\n", mark(tc))
	fmt.Printf("tcp peer %s\n", c.RemoteAddr())
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(marker + "\n")); err != nil {
		fail("tcp write: %v", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fail("tcp read: %v (got %q)", err, line)
	}
	fmt.Printf("tcp reply %s\n", strings.TrimRight(line, "\r\n"))
}

func runUDP(addr, marker string, timeout time.Duration) {
	dst, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		fail("udp address %s: %v", addr, err)
	}
	network := "udp4"
	if dst.IP.To4() == nil {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil) // unbound and unconnected: per-datagram destination
	if err != nil {
		fail("udp socket: %v", err)
	}
	defer c.Close()
	fmt.Printf("udp mark 0x%08x\n", mark(c))
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.WriteToUDP([]byte(marker), dst); err != nil {
		fail("udp sendto %s: %v", addr, err)
	}
	buf := make([]byte, 2048)
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		fail("udp recvfrom: %v", err)
	}
	fmt.Printf("udp peer %s\n", from)
	fmt.Printf("udp reply %s\n", buf[:n])
}

func runUDPConn(addr, marker string, timeout time.Duration) {
	c, err := net.DialTimeout("udp", addr, timeout)
	if err != nil {
		fail("udp connect %s: %v", addr, err)
	}
	defer c.Close()
	fmt.Printf("udpconn mark 0x%08x\n", mark(c.(*net.UDPConn)))
	fmt.Printf("udpconn peer %s\n", c.RemoteAddr())
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(marker)); err != nil {
		fail("udp send: %v", err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		fail("udp recv: %v", err)
	}
	fmt.Printf("udpconn reply %s\n", buf[:n])
}

func main() {
	timeout := flag.Duration("timeout", 5*time.Second, "bound on connect, send and receive")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: ie-go-client [-timeout D] tcp|udp|udpconn ADDR:PORT MARKER")
	}
	flag.Parse()
	if flag.NArg() != 3 || *timeout <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	mode, addr, marker := flag.Arg(0), flag.Arg(1), flag.Arg(2)
	switch mode {
	case "tcp":
		runTCP(addr, marker, *timeout)
	case "udp":
		runUDP(addr, marker, *timeout)
	case "udpconn":
		runUDPConn(addr, marker, *timeout)
	default:
		flag.Usage()
		os.Exit(2)
	}
}
