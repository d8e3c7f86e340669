package lifecycle

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// HTTP is an HTTP server as a component. Start listens on addr (an error there is the
// start's), calls listening with the address it got when set, and serves srv in the
// background. Stop lets requests in flight finish for up to grace, then closes the server,
// cutting those still running. A Serve that fails on its own (not through Stop) calls
// onError when set: pass Group.Fail to end the process, or a logging function to keep it
// running.
func HTTP(name, addr string, srv *http.Server, grace time.Duration, listening func(net.Addr), onError func(error)) Component {
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
