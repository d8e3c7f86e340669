package testredis

import (
	"bytes"
	"net"
	"sync"
)

// ReplyDropper stands between clients and a Redis on 127.0.0.1. Armed with a pattern, it lets
// the first request that holds it through to Redis, which runs it, then loses the reply: it
// closes that client connection instead of passing the reply on. The client reads EOF after
// its command ran, as when a read times out or a failover cuts the connection, and go-redis
// sends the command again on a new connection.
type ReplyDropper struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	pattern []byte
	conns   []net.Conn
	dropped int

	wg sync.WaitGroup
}

// StartReplyDropper listens on a free port of 127.0.0.1 and forwards each connection to
// upstream (host:port). Close stops it.
func StartReplyDropper(upstream string) (*ReplyDropper, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &ReplyDropper{ln: ln, upstream: upstream}
	d.wg.Add(1)
	go d.accept()
	return d, nil
}

// Addr is the address clients dial instead of Redis's.
func (d *ReplyDropper) Addr() string { return d.ln.Addr().String() }

// DropReplyTo arms the dropper: the reply to the next request holding pattern, on any
// connection, is lost (once).
func (d *ReplyDropper) DropReplyTo(pattern []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pattern = bytes.Clone(pattern)
}

// Dropped returns how many replies the dropper lost.
func (d *ReplyDropper) Dropped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// Close stops listening, closes every connection and waits for the forwarding to end.
func (d *ReplyDropper) Close() error {
	err := d.ln.Close()
	d.mu.Lock()
	for _, c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	return err
}

// take reports whether buf holds the armed pattern, disarming the dropper when it does.
func (d *ReplyDropper) take(buf []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pattern == nil || !bytes.Contains(buf, d.pattern) {
		return false
	}
	d.pattern = nil
	return true
}

func (d *ReplyDropper) accept() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", d.upstream)
		if err != nil {
			c.Close()
			continue
		}
		d.mu.Lock()
		d.conns = append(d.conns, c, u)
		d.mu.Unlock()
		drop := make(chan struct{}, 1) // the next reply on this connection is lost
		d.wg.Add(2)
		go d.forward(c, u, func(buf []byte) bool { // client to Redis
			if d.take(buf) {
				drop <- struct{}{}
			}
			return true
		})
		go d.forward(u, c, func([]byte) bool { // Redis to client
			select {
			case <-drop:
				d.mu.Lock()
				d.dropped++
				d.mu.Unlock()
				return false
			default:
				return true
			}
		})
	}
}

// forward copies from src to dst until either ends, asking pass about each read first: a
// read it refuses is not written, and ends the connection (both ends are closed).
func (d *ReplyDropper) forward(src, dst net.Conn, pass func([]byte) bool) {
	defer d.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !pass(buf[:n]) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
