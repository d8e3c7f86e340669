// Package redisx opens Redis clients from URLs: the forms asynq understands (redis://,
// rediss://, redis-socket://, redis-sentinel://) plus redis-cluster://host1:port,host2:port.
package redisx

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ConnOpt returns asynq's connection options for the URL.
func ConnOpt(rawURL string) (asynq.RedisConnOpt, error) {
	if strings.HasPrefix(rawURL, "redis-cluster://") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		opt := asynq.RedisClusterClientOpt{Addrs: strings.Split(u.Host, ",")}
		if u.User != nil {
			opt.Username = u.User.Username()
			opt.Password, _ = u.User.Password()
		}
		return opt, nil
	}
	opt, err := asynq.ParseRedisURI(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	return opt, nil
}

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
