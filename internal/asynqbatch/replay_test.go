package asynqbatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/heraldmsg/herald/internal/rkeys"
)

// lossyProxy forwards TCP connections from 127.0.0.1 to a Redis. Armed with a pattern, it lets
// the first request that holds it through to Redis, which runs it, then swallows the reply
// and closes that connection: the client reads EOF after its command ran, as when a read
// times out or a failover cuts the connection, and go-redis sends the command again.
type lossyProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	pattern []byte
	conns   []net.Conn
	dropped int

	wg sync.WaitGroup
}

func startLossyProxy(target string) (*lossyProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &lossyProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func (p *lossyProxy) addr() string { return p.ln.Addr().String() }

// dropReplyTo arms the proxy: the reply to the next request holding pattern is lost.
func (p *lossyProxy) dropReplyTo(pattern []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pattern = pattern
}

// droppedReplies returns how many replies the proxy swallowed.
func (p *lossyProxy) droppedReplies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// close stops the proxy and waits for its goroutines.
func (p *lossyProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *lossyProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		armed := make(chan struct{}) // closed once this connection carried the pattern
		p.wg.Add(2)
		go p.requests(client, server, armed)
		go p.replies(client, server, armed)
	}
}

// requests copies client to server, watching for the pattern (also across two reads).
func (p *lossyProxy) requests(client, server net.Conn, armed chan struct{}) {
	defer p.wg.Done()
	defer server.Close()
	var tail []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if p.pattern != nil {
				seen := append(tail, buf[:n]...)
				if bytes.Contains(seen, p.pattern) {
					p.pattern = nil
					close(armed)
				} else if keep := len(p.pattern) - 1; len(seen) > keep {
					tail = append(tail[:0], seen[len(seen)-keep:]...)
				} else {
					tail = seen
				}
			}
			p.mu.Unlock()
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// replies copies server to client until the connection is armed: then the next reply is
// dropped and both ends are closed.
func (p *lossyProxy) replies(client, server net.Conn, armed chan struct{}) {
	defer p.wg.Done()
	defer client.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			select {
			case <-armed:
				p.mu.Lock()
				p.dropped++
				p.mu.Unlock()
				server.Close()
				return
			default:
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// playLostReply writes a batch of new tasks (fresh) through a connection that loses the
// reply of the batch's script once, so go-redis sends the pipeline again and the script runs
// a second time: every task must still be queued once, and stay as the first run wrote it.
func playLostReply(ctx context.Context, rdb redis.UniversalClient, q string) error {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return fmt.Errorf("the case needs a single-node client, got %T", rdb)
	}
	o := c.Options()
	p, err := startLossyProxy(o.Addr)
	if err != nil {
		return err
	}
	defer p.close()
	via := redis.NewClient(&redis.Options{Addr: p.addr(), DB: o.DB, Username: o.Username, Password: o.Password, Protocol: o.Protocol})
	defer via.Close()
	// Loaded first, so that the call that loses its reply is the script's run and not a NOSCRIPT.
	if err := asynqBatchCmd.Load(ctx, via).Err(); err != nil {
		return err
	}
	w := New(via)
	w.published.Store(q, true) // keeps asynq's queue set, a key without the case's id, out of the case

	later := time.Now().Add(time.Hour).Truncate(time.Second)
	var tasks []Task
	var pendingIDs []string
	for i := range 20 {
		id := fmt.Sprintf("r/%02d", i)
		tasks = append(tasks, Task{Type: "message:send", Payload: []byte(`{"to":"` + id + `"}`), ID: id, Queue: q, MaxRetry: 5})
		pendingIDs = append(pendingIDs, id)
	}
	tasks = append(tasks, Task{Type: "message:send", Payload: []byte(`{}`), ID: "r/later", Queue: q, ProcessAt: later})

	p.dropReplyTo([]byte(asynqBatchCmd.Hash()))
	created, err := w.Write(ctx, tasks, true)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if n := p.droppedReplies(); n != 1 {
		return fmt.Errorf("%d replies lost, want 1: the case did not replay the script", n)
	}
	pending, err := rdb.LRange(ctx, rkeys.AsynqPending(q), 0, -1).Result()
	if err != nil {
		return err
	}
	var errs []error
	count := map[string]int{}
	for _, id := range pending {
		count[id]++
	}
	for _, id := range pendingIDs {
		if count[id] != 1 {
			errs = append(errs, fmt.Errorf("task %s is on pending %d times, want once", id, count[id]))
		}
	}
	if len(pending) != len(pendingIDs) {
		errs = append(errs, fmt.Errorf("pending holds %d ids for %d tasks", len(pending), len(pendingIDs)))
	}
	s, err := rdb.ZRangeWithScores(ctx, rkeys.AsynqScheduled(q), 0, -1).Result()
	if err != nil {
		return err
	}
	if len(s) != 1 || s[0].Member != "r/later" || s[0].Score != float64(later.Unix()) {
		errs = append(errs, fmt.Errorf("scheduled %v, want r/later at %d", s, later.Unix()))
	}
	for _, t := range tasks {
		h, err := rdb.HGetAll(ctx, rkeys.AsynqTask(q, t.ID)).Result()
		if err != nil {
			return err
		}
		if h["msg"] != string(encodeTaskMessage(t)) {
			errs = append(errs, fmt.Errorf("task %s: msg %q, want its encoded message", t.ID, h["msg"]))
		}
	}
	// Only the second run's reply arrives: it found every task the first run wrote.
	if len(created) != len(tasks) || slices.Contains(created, true) {
		errs = append(errs, fmt.Errorf("created %v, want all false (the second run's reply)", created))
	}
	return errors.Join(errs...)
}
