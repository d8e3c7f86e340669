package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Server is an HTTP server to run as a component (see HTTP).
type Server struct {
	// Name names the component in errors.
	Name string
	// Addr is where it listens ("127.0.0.1:0" for any free port).
	Addr   string
	Server *http.Server
	// Grace is how long Stop lets requests in flight finish before it cuts them.
	Grace time.Duration
	// Listening, when set, is called with the address the listener got.
	Listening func(net.Addr)
	// OnError, when set, is called when Serve fails on its own (not through Stop): pass
	// Group.Fail to end the process, or a logging function to keep it running.
	OnError func(error)
}

// HTTP is an HTTP server as a component. Start listens on s.Addr (an error there is the
// start's), calls s.Listening with the address it got, and serves in the background. Stop lets
// requests in flight finish for up to s.Grace, then closes the server, cutting those still
// running.
func HTTP(s Server) Component {
	name, addr, srv, grace, listening, onError := s.Name, s.Addr, s.Server, s.Grace, s.Listening, s.OnError
	return Component{
		Name: name,
		Start: func() error {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			if listening != nil {
				listening(ln.Addr())
			}
			go func() {
				if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && onError != nil {
					onError(err)
				}
			}()
			return nil
		},
		Stop: func() error {
			ctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			err := srv.Shutdown(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				// Requests still running after the grace period are cut: the process is
				// stopping, which is not a failure of the server.
				return srv.Close()
			}
			return err
		},
	}
}
