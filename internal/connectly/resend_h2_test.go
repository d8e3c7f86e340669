package connectly

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// h2Frame writes one HTTP/2 frame (RFC 9113, 4.1).
func h2Frame(w io.Writer, typ, flags byte, stream uint32, payload []byte) error {
	h := make([]byte, 9, 9+len(payload))
	h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[3], h[4] = typ, flags
	binary.BigEndian.PutUint32(h[5:], stream)
	_, err := w.Write(append(h, payload...))
	return err
}

// resetFirstH2 serves HTTP/2 over TLS on 127.0.0.1 at the frame level: the first request it
// reads whole (its DATA with END_STREAM) is reset with RST_STREAM(PROTOCOL_ERROR), as a proxy
// that chokes on an answer might; every later one is answered 200 with a message id. It counts
// the whole requests it read.
func resetFirstH2(t *testing.T) (addr string, bodies *atomic.Int32) {
	t.Helper()
	// httptest's certificate, served by a listener of our own that speaks h2 only.
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.EnableHTTP2 = true
	srv.StartTLS()
	certs := srv.TLS.Certificates
	srv.Close()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: certs, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	bodies = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveResetFirst(c, bodies)
		}
	}()
	return ln.Addr().String(), bodies
}

func serveResetFirst(c net.Conn, bodies *atomic.Int32) {
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := io.ReadFull(r, make([]byte, 24)); err != nil { // the client preface
		return
	}
	if h2Frame(c, 0x4, 0, 0, nil) != nil { // SETTINGS
		return
	}
	for {
		h := make([]byte, 9)
		if _, err := io.ReadFull(r, h); err != nil {
			return
		}
		n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		typ, flags, stream := h[3], h[4], binary.BigEndian.Uint32(h[5:])&0x7fffffff
		if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
			return
		}
		switch {
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledge
			_ = h2Frame(c, 0x4, 0x1, 0, nil)
		case typ == 0x0 && flags&0x1 != 0: // DATA with END_STREAM: the whole request is here
			if bodies.Add(1) == 1 {
				_ = h2Frame(c, 0x3, 0, stream, []byte{0, 0, 0, 1}) // RST_STREAM(PROTOCOL_ERROR)
			} else {
				_ = h2Frame(c, 0x1, 0x4, stream, []byte{0x88}) // HEADERS :status 200 (HPACK index 8)
				_ = h2Frame(c, 0x0, 0x1, stream, []byte(`{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}`))
			}
		}
	}
}

// TestNoResendAfterStreamReset: Go's HTTP/2 transport sends a request again on its own when
// the server resets its stream with PROTOCOL_ERROR, even after the whole request arrived, if
// it can rebuild the body. A send is not idempotent (reference 4.4: a reset after the request
// was written is a duplicate risk), so the client must not let it: the server reads one
// request, and the send's answer is the ambiguous "no response after the request was sent",
// which Herald settles by its policy instead of as accepted.
func TestNoResendAfterStreamReset(t *testing.T) {
	addr, bodies := resetFirstH2(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	tr.ForceAttemptHTTP2 = true
	c, err := NewClient(ClientConfig{BaseURL: "https://" + addr, BusinessID: "b", APIKey: "key-0123456789abcdef",
		HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SendTemplate(context.Background(), TemplateMessage{Number: "+15550000000", TemplateName: "t", Language: "en"})
	if n := bodies.Load(); n != 1 {
		t.Fatalf("the server read %d whole requests for one send (answer %+v, %v), want 1", n, res, err)
	}
	var te *TransportError
	if !errors.As(err, &te) || !te.Written {
		t.Fatalf("answer %+v, %v; want a TransportError after the request was written", res, err)
	}
	if d := defaultTable.Decide(err); d.Outcome != OutcomeMaybeSent {
		t.Errorf("decision %+v for a reset after the whole request arrived, want maybe sent", d)
	}
}

// TestDefaultClientSpeaksHTTP1: the client Herald builds uses HTTP/1.1 only, where a request
// fails either before it was written or after, and no GOAWAY can leave a written request's
// fate unknown.
func TestDefaultClientSpeaksHTTP1(t *testing.T) {
	c, err := NewClient(ClientConfig{BaseURL: "https://127.0.0.1:1", BusinessID: "b", APIKey: "key-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr.Protocols == nil || tr.Protocols.HTTP2() || !tr.Protocols.HTTP1() {
		t.Fatalf("transport protocols %v, want HTTP/1.1 only", tr.Protocols)
	}
}
