package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// KeyPrefix starts the redis key of a client's bucket: "rl:" + the key given to Allow.
const KeyPrefix = "rl:"

// takeScript takes one token from the bucket KEYS[1] in one atomic step, so that edges sharing
// the server never both spend the same token. ARGV[1] is the refill rate (tokens a second),
// ARGV[2] the capacity. The bucket is a hash {tokens, ts}: the tokens left after the last take
// and when it was, in µs of the server's clock. Time is read from redis (TIME), never from the
// caller: every edge then sees the same clock, whatever the skew between their hosts.
//
// A missing bucket is full. The refill is tokens + elapsed·rate, capped at the capacity; a
// clock that went back (a failover) refills nothing. With a token: spend it, store the bucket
// and PEXPIRE it for exactly the time it takes to fill up again, after which a missing bucket
// means the same thing. Without: store nothing (the old state still gives the same answer
// later) and return the milliseconds until one token is there, rounded up.
//
// It returns {1, 0} or {0, ms}. It needs redis 5 or newer, where a script that reads TIME
// before it writes is replicated by its effects.
var takeScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]), tonumber(b[2])
if tokens == nil or ts == nil then
  tokens, ts = burst, now
elseif now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000000)
  ts = now
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate)}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%d', ts))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((burst - tokens) * 1000 / rate)))
return {1, 0}
`)

// redisStore keeps the buckets in redis, through one client (a connection pool).
type redisStore struct {
	client  *redis.Client
	rate    string // ARGV[1]
	burst   int    // ARGV[2]
	timeout time.Duration
}

// newRedisStore makes the client; it connects on first use. Every wait is bounded by
// c.RedisTimeout: dial, read, write and the wait for a free connection, one dial attempt and no
// retry, so a down or stalled server costs a request at most the timeout. After PoolSize
// failed dials in a row the pool fails at once and probes the server every second in the
// background, which is how it comes back by itself.
func newRedisStore(c Config) *redisStore {
	return &redisStore{
		client: redis.NewClient(&redis.Options{
			Addr:                  c.RedisAddr,
			DialTimeout:           c.RedisTimeout,
			ReadTimeout:           c.RedisTimeout,
			WriteTimeout:          c.RedisTimeout,
			PoolTimeout:           c.RedisTimeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            -1, // none
			DialerRetries:         1,  // one attempt
			DisableIdentity:       true,
			MaintNotificationsConfig: &maintnotifications.Config{
				Mode: maintnotifications.ModeDisabled,
			},
		}),
		rate:    strconv.FormatFloat(c.RPS, 'g', -1, 64),
		burst:   c.burst(),
		timeout: c.RedisTimeout,
	}
}

// take runs the script: EVALSHA, and EVAL when the server does not know it (a restarted redis).
func (s *redisStore) take(ctx context.Context, key string) (bool, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := takeScript.Run(ctx, s.client, []string{KeyPrefix + key}, s.rate, s.burst).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("ratelimit: the script answered %v", res)
	}
	return res[0] == 1, time.Duration(res[1]) * time.Millisecond, nil
}

func (s *redisStore) close() error { return s.client.Close() }
