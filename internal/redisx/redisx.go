// Package redisx opens Redis clients from URLs: the forms asynq understands (redis://,
// rediss://, redis-socket://, redis-sentinel://) plus redis-cluster://host1:port,host2:port,
// and shows them redacted in errors (Redact).
package redisx

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ConnOpt returns asynq's connection options for the URL, its user name (an ACL user) and
// password included. Its errors show the URL redacted (see Redact), never its password.
func ConnOpt(rawURL string) (asynq.RedisConnOpt, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, parseError(rawURL, err)
	}
	if u.Scheme == "redis-cluster" {
		if u.Host == "" {
			return nil, fmt.Errorf("redis url %q: no host (want redis-cluster://host1:port,host2:port)", Redact(rawURL))
		}
		opt := asynq.RedisClusterClientOpt{Addrs: strings.Split(u.Host, ",")}
		if u.User != nil {
			opt.Username = u.User.Username()
			opt.Password, _ = u.User.Password()
		}
		return opt, nil
	}
	// asynq parses the URL again; it has parsed above, so its errors name no part of it.
	opt, err := asynq.ParseRedisURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url %q: %w", Redact(rawURL), err)
	}
	return withUser(opt, u.User.Username()), nil
}

// withUser sets the user name of a URL (redis://user@host, an ACL user) on asynq's options,
// whose parser drops it and would log in as the default user: for a Sentinel URL, whose
// password is the sentinels' (SentinelPassword), it is the sentinels' user.
func withUser(opt asynq.RedisConnOpt, name string) asynq.RedisConnOpt {
	if name == "" {
		return opt
	}
	switch o := opt.(type) {
	case asynq.RedisClientOpt:
		o.Username = name
		return o
	case asynq.RedisFailoverClientOpt:
		o.SentinelUsername = name
		return o
	}
	return opt
}

// parseError is a URL that does not parse. url.Parse's errors quote the whole URL, and their
// detail may quote a piece of a password that holds '/', '?' or '#' (read as the end of the
// host), so the detail is that of the redacted URL: what is wrong outside the password, else
// that the password needs escaping. The parse error is not wrapped, so no caller can print it
// whole.
func parseError(rawURL string, err error) error {
	shown := Redact(rawURL)
	if shown != rawURL {
		if _, err = url.Parse(shown); err == nil {
			return fmt.Errorf("redis url %q does not parse: percent-encode any '%%', '/', '?', '#' or '@' in the password", shown)
		}
	}
	detail := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		detail = ue.Err.Error()
	}
	return fmt.Errorf("redis url %q does not parse: %s", shown, detail)
}

// Redact returns a Redis URL (or any URL with user information) fit for an error or a log: the
// password (and a user given without a password, which may be one) replaced by xxxxx, as are
// the values of query parameters named like a password. It works on URLs that do not parse
// too: everything between "://" and the last '@' is the user information.
func Redact(rawURL string) string {
	prefix, user, hasUser, rest := splitURL(rawURL)
	if hasUser {
		name, _, ok := strings.Cut(user, ":")
		if ok {
			prefix += name + ":xxxxx@"
		} else {
			prefix += "xxxxx@"
		}
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		params := strings.Split(rest[q+1:], "&")
		for i, p := range params {
			if k, _, ok := strings.Cut(p, "="); ok && isPasswordKey(k) {
				params[i] = k + "=xxxxx"
			}
		}
		rest = rest[:q+1] + strings.Join(params, "&")
	}
	return prefix + rest
}

// HasPassword says whether a Redis URL carries a password: after a ':' in its user
// information, or in a query parameter named like one (see Redact).
func HasPassword(rawURL string) bool {
	_, user, _, rest := splitURL(rawURL)
	if strings.Contains(user, ":") {
		return true
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		for _, p := range strings.Split(rest[q+1:], "&") {
			if k, v, _ := strings.Cut(p, "="); isPasswordKey(k) && v != "" {
				return true
			}
		}
	}
	return false
}

// splitURL splits a URL, parsed or not, into the scheme with "://", the user information
// (before the last '@', which hasUser reports) and the rest.
func splitURL(rawURL string) (prefix, user string, hasUser bool, rest string) {
	rest = rawURL
	if i := strings.Index(rawURL, "://"); i >= 0 {
		prefix, rest = rawURL[:i+3], rawURL[i+3:]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		return prefix, rest[:at], true, rest[at+1:]
	}
	return prefix, "", false, rest
}

func isPasswordKey(k string) bool { return strings.Contains(strings.ToLower(k), "password") }

// Open returns a client for the URL. It does not connect; use Ping.
func Open(rawURL string) (redis.UniversalClient, error) {
	opt, err := ConnOpt(rawURL)
	if err != nil {
		return nil, err
	}
	c, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("redis url: unsupported client type")
	}
	return c, nil
}

// Ping checks the connection within timeout.
func Ping(ctx context.Context, c redis.UniversalClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}
