package testredis

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server process a test started for itself (StartServer): a master, a
// replica or a sentinel. It is killed when the test ends.
type Server struct {
	// Port is the port it listens on, on 127.0.0.1; Addr is "127.0.0.1:Port".
	Port int
	Addr string
	// Process is the server's process, for a test that kills it on purpose.
	Process *os.Process
}

// The ports StartServer picks from: below Linux's ephemeral range (32768 and up), so no
// outgoing connection is given one, and clear of the ports Redis is usually run on (6379,
// 26379, 7000 and up).
const (
	serverPortMin = 20000
	serverPortMax = 32000
)

// serverTries is how many ports StartServer tries before it fails the test.
const serverTries = 10

// StartServer starts redis-server with the configuration conf, to which it adds the port
// line, and args (e.g. "--sentinel"); the configuration and the server's output are written
// to dir as name.conf and name.log. It returns once the server answering on the port is the
// process it started (INFO's process_id), and kills it by its PID when the test ends.
//
// The port is picked at random in 20000-31999, never by scanning from the lowest: tests run at
// once (two packages, two checkouts, CI) then pick different ports, where a scan gives them
// all the same ones, and a port checked free may be taken before the server binds it. A port
// the server cannot bind (it exits), or where another process answers, is given up for
// another, up to serverTries times.
func StartServer(tb testing.TB, dir, name, conf string, args ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not on PATH")
	}
	var lastErr error
	for range serverTries {
		port := pickPort()
		if port == 0 {
			continue
		}
		s, err := startServer(tb, bin, dir, name, conf, port, args)
		if err == nil {
			return s
		}
		lastErr = err
	}
	tb.Fatalf("redis-server %s did not start on any of %d ports: %v", name, serverTries, lastErr)
	return nil
}

// pickPort returns a port of 20000-31999 picked at random that nobody listens on now (a later
// bind may still fail), or 0 when the one it picked is taken. A test of StartServer replaces it.
var pickPort = func() int {
	port := serverPortMin + rand.IntN(serverPortMax-serverPortMin)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return 0
	}
	ln.Close()
	return port
}

// startServer starts one redis-server on port and waits until it answers as itself. Its
// error says why the port would not do; the process it started is ended by then. A server
// that is up is killed when the test ends.
func startServer(tb testing.TB, bin, dir, name, conf string, port int, args []string) (*Server, error) {
	tb.Helper()
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf+fmt.Sprintf("\nport %d\n", port)), 0o644); err != nil {
		tb.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{path}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	kill := func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// A loaded machine may take seconds to start a process; a server that did start answers
	// or exits well within this.
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("port %d: redis-server exited: %s", port, lastLines(string(out), 3))
		default:
		}
		pid, err := processID(addr)
		switch {
		case err == nil && pid == cmd.Process.Pid:
			tb.Cleanup(kill)
			return &Server{Port: port, Addr: addr, Process: cmd.Process}, nil
		case err == nil:
			kill()
			return nil, fmt.Errorf("port %d: another redis-server (process %d) answers there", port, pid)
		}
		if time.Now().After(deadline) {
			kill()
			tb.Fatalf("redis-server %s on port %d did not answer within 30 s: %v", name, port, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processID asks the server at addr for its process id (INFO server), with a plain RESP
// exchange: a server that is not up yet is no error worth logging.
func processID(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(head, "$") && !strings.HasPrefix(head, "=") {
		// An error (-LOADING, -NOAUTH...): not ready, or not a server of this test's.
		return 0, fmt.Errorf("INFO server: %s", strings.TrimSpace(head))
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return 0, fmt.Errorf("INFO server: %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("INFO server has no process_id")
}

// lastLines is the last n lines of s, joined by " | ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
