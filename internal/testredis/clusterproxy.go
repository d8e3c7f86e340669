package testredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterProxy speaks the Redis protocol (RESP2) on a port of 127.0.0.1 and runs each command
// it reads on a Redis Cluster, through a cluster client: a *redis.Client on its address talks
// to the Cluster as to one Redis. It lets a table of cases written for a single Redis's
// client play on a Cluster, whose own rules then hold (a script's KEYS in one slot, a script
// touching only keys of the node it runs on). MULTI ... EXEC runs as a cluster client's
// TxPipelined: one transaction per slot; SCRIPT LOAD loads on every master, as the cluster
// client does. No blocking command, no Pub/Sub, no SELECT but 0.
type ClusterProxy struct {
	ln    net.Listener
	cc    *redis.ClusterClient
	check *SlotCheck

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// ProxyClient starts a ClusterProxy in front of the Cluster of cluster (see Cluster) and
// returns a client on it. Its scripts are held to one slot as cluster's are (the test fails
// otherwise). Both are closed when the test ends.
func ProxyClient(t testing.TB, cluster *redis.ClusterClient) *redis.Client {
	t.Helper()
	o := cluster.Options()
	// The proxy answers in RESP2, so it reads the Cluster's answers in RESP2 too.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: o.Addrs, Username: o.Username, Password: o.Password, Protocol: 2})
	p, err := StartClusterProxy(cc)
	if err != nil {
		cc.Close()
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() {
		rdb.Close()
		p.Close()
		for _, pr := range p.check.Problems() {
			t.Error(pr)
		}
		cc.Close()
	})
	return rdb
}

// StartClusterProxy listens on a free port of 127.0.0.1 and serves each connection by
// running its commands on cc, which must speak RESP2 (ClusterOptions.Protocol 2) and which
// the proxy does not close. Close stops it.
func StartClusterProxy(cc *redis.ClusterClient) (*ClusterProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &ClusterProxy{ln: ln, cc: cc, check: NewSlotCheck(), conns: map[net.Conn]bool{}}
	cc.AddHook(p.check)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients dial.
func (p *ClusterProxy) Addr() string { return p.ln.Addr().String() }

// Close stops listening, closes every connection and waits for them to end.
func (p *ClusterProxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *ClusterProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
			c.Close()
		}()
	}
}

// serve reads the commands of one connection and answers each in order.
func (p *ClusterProxy) serve(c net.Conn) {
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	var tx [][]any // commands queued since MULTI; nil outside a transaction
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		switch name := strings.ToLower(fmt.Sprint(args[0])); {
		case name == "hello":
			w.WriteString("-ERR unknown command 'hello'\r\n") // the client falls back to RESP2
		case name == "client":
			w.WriteString("+OK\r\n")
		case name == "select":
			if fmt.Sprint(args[len(args)-1]) == "0" {
				w.WriteString("+OK\r\n")
			} else {
				w.WriteString("-ERR a Cluster has database 0 only\r\n")
			}
		case name == "script" && len(args) == 3 && strings.EqualFold(fmt.Sprint(args[1]), "load"):
			// Loaded on every master, as the cluster client loads a script.
			cmd := p.cc.ScriptLoad(ctx, fmt.Sprint(args[2]))
			writeReply(w, cmd.Val(), cmd.Err())
		case name == "multi":
			tx = [][]any{}
			w.WriteString("+OK\r\n")
		case name == "discard":
			tx = nil
			w.WriteString("+OK\r\n")
		case name == "exec":
			cmds := make([]*redis.Cmd, len(tx))
			_, _ = p.cc.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				for i, a := range tx {
					cmds[i] = redis.NewCmd(ctx, a...)
					_ = pipe.Process(ctx, cmds[i])
				}
				return nil
			})
			fmt.Fprintf(w, "*%d\r\n", len(cmds))
			for _, cmd := range cmds {
				writeReply(w, cmd.Val(), cmd.Err())
			}
			tx = nil
		case tx != nil:
			tx = append(tx, args)
			w.WriteString("+QUEUED\r\n")
		default:
			cmd := redis.NewCmd(ctx, args...)
			_ = p.cc.Process(ctx, cmd)
			writeReply(w, cmd.Val(), cmd.Err())
		}
		cancel()
		// Answer once the client has nothing more buffered: a pipeline's answers go together.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// readHeader reads a line "<kind><n>" (an array's or a bulk string's length), n at least
// least; what names the kind in errors.
func readHeader(r *bufio.Reader, kind byte, what string, least int) (int, error) {
	line, err := readLine(r)
	if err != nil {
		return 0, err
	}
	if len(line) < 2 || line[0] != kind {
		return 0, fmt.Errorf("testredis: proxy: want %s, read %q", what, line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < least {
		return 0, fmt.Errorf("testredis: proxy: %s of %q", what, line)
	}
	return n, nil
}

// readCommand reads one command: an array of bulk strings.
func readCommand(r *bufio.Reader) ([]any, error) {
	n, err := readHeader(r, '*', "an array", 1)
	if err != nil {
		return nil, err
	}
	args := make([]any, n)
	for i := range args {
		size, err := readHeader(r, '$', "a bulk string", 0)
		if err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// writeReply writes one answer read by a RESP2 cluster client: its value, or its error (a
// nil reply for redis.Nil).
func writeReply(w *bufio.Writer, v any, err error) {
	var rerr redis.Error
	switch {
	case errors.Is(err, redis.Nil):
		w.WriteString("$-1\r\n")
		return
	case errors.As(err, &rerr):
		w.WriteString("-" + oneLine(rerr.Error()) + "\r\n")
		return
	case err != nil:
		w.WriteString("-ERR testredis proxy: " + oneLine(err.Error()) + "\r\n")
		return
	}
	switch v := v.(type) {
	case nil:
		w.WriteString("$-1\r\n")
	case error:
		w.WriteString("-" + oneLine(v.Error()) + "\r\n")
	case string:
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(v), v)
	case int64:
		fmt.Fprintf(w, ":%d\r\n", v)
	case []any:
		fmt.Fprintf(w, "*%d\r\n", len(v))
		for _, e := range v {
			writeReply(w, e, nil)
		}
	default:
		w.WriteString("-ERR testredis proxy: cannot answer a " + fmt.Sprintf("%T", v) + "\r\n")
	}
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
