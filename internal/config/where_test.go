package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/heraldmsg/herald/internal/config"
	"github.com/heraldmsg/herald/internal/redisx"
)

// An error about a value written in the file names the file, the line and column of the
// value, and its key, as campaign files' errors do; a value from the environment names its
// variable.
func TestLoadErrorsNameFileLineAndKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		env        env
		key        string
		want       string // the error after the file's path ("" when no file is named)
	}{
		{"Validation", "senders:\n  - number: \"+1415\"\n", nil, "senders[0].number",
			`:2:13: senders[0].number: "+1415" is not an E.164 number (+ and 7 to 15 digits)`},
		{"SecondSender", "senders:\n  - number: \"+14151111234\"\n  - {number: \"+14151111234\", rate: 5}\n", nil, "senders[1].number",
			`:3:14: senders[1].number: +14151111234 is listed twice`},
		{"TypeError", "retry:\n  max_attempts: many\n", nil, "retry.max_attempts",
			`:2:17: retry.max_attempts: "many": want a whole number`},
		{"TypeErrorInFlowMapping", "limits:\n  frequency_caps:\n    utility: {window: 24h, max: lots}\n", nil, "limits.frequency_caps.utility.max",
			`:3:33: limits.frequency_caps.utility.max: "lots": want a whole number`},
		{"TypeErrorInList", "retry:\n  ambiguous_statuses: [502, five]\n", nil, "retry.ambiguous_statuses[1]",
			`:2:29: retry.ambiguous_statuses[1]: "five": want a whole number`},
		{"SectionForNumber", "worker:\n  concurrency:\n    max: 5\n", nil, "worker.concurrency",
			`:3:5: worker.concurrency: a section: want a whole number`},
		{"SeveralTypeErrors", "retry:\n  max_attempts: many\n  ambiguous_statuses: five\n", nil, "retry.max_attempts",
			`:2:17: retry.max_attempts: "many": want a whole number (and 1 more problem(s) in the file)`},
		{"LogLevel", "log:\n  level: loud\n", nil, "log.level",
			`:2:10: log.level: "loud": want trace, debug, info, warn or error`},
		{"LogFormat", "log:\n  format: xml\n", nil, "log.format",
			`:2:11: log.format: "xml": want json, console or auto`},
		{"UnknownKey", "redis:\n  url: redis://127.0.0.1:6379/0\n  pasword_file: x\n", nil, "redis.pasword_file",
			`:3:3: redis.pasword_file: unknown key (did you mean "password_file"?)`},
		{"UnknownKeyNothingClose", "redis:\n  url: redis://127.0.0.1:6379/0\n  host: x\n", nil, "redis.host",
			`:3:3: redis.host: unknown key (known keys: password_file, url)`},
		{"RedisPasswordKey", "redis:\n  password: x\n", nil, "redis.password",
			`:2:3: redis.password: unknown key (secrets are not read from the config file: set HERALD_REDIS_PASSWORD or redis.password_file)`},
		{"FromEnvironment", "log:\n  level: info\n", env{"HERALD_LOG_LEVEL": "loud"}, "log.level",
			`config: log.level (HERALD_LOG_LEVEL): "loud": want trace, debug, info, warn or error`},
		{"KeyTwice", "redis:\n  url: redis://127.0.0.1:6379/0\nredis:\n  url: redis://127.0.0.1:6379/1\n", nil, "redis",
			`:3:1: redis: written twice, first at line 1: keep one`},
		{"NestedKeyTwice", "retry:\n  base: 1s\n  cap: 1m\n  base: 2s\nworker:\n  concurrency: 0\n", nil, "retry.base",
			`:4:3: retry.base: written twice, first at line 2: keep one`},
		{"KeyTwiceInFlowMapping", "errors: {HTTP_500: permanent, HTTP_500: transient}\n", nil, "errors.HTTP_500",
			`:1:31: errors.HTTP_500: written twice, first at line 1: keep one`},
		// A problem between two keys is told of the one the file writes.
		{"AgainstDefault", "scheduler:\n  min_backlog: 6000\n", nil, "scheduler.min_backlog",
			`:2:16: scheduler.min_backlog: 6000: must be at most scheduler.max_backlog (5000)`},
		{"AgainstDefaultOldName", "scheduler:\n  min_window: 6000\n", nil, "scheduler.min_backlog",
			`:2:15: scheduler.min_backlog: 6000: must be at most scheduler.max_backlog (5000) (written as scheduler.min_window, its old name)`},
		{"MaxBelowDefaultMin", "scheduler:\n  max_backlog: 500\n", nil, "scheduler.max_backlog",
			`:2:16: scheduler.max_backlog: 500: must be at least scheduler.min_backlog (1000)`},
		{"BothWritten", "scheduler:\n  min_backlog: 600\n  max_backlog: 500\n", nil, "scheduler.max_backlog",
			`:3:16: scheduler.max_backlog: 500: must be at least scheduler.min_backlog (600)`},
		{"MinBacklogZero", "scheduler: {min_backlog: 0}\n", nil, "scheduler.min_backlog",
			`:1:26: scheduler.min_backlog: 0: want at least 1 task`},
		{"RetryBaseZero", "retry: {base: 0s}\n", nil, "retry.base", `:1:15: retry.base: 0s: must be positive (e.g. 1s)`},
		{"RetryBaseAboveDefaultCap", "retry: {base: 10m}\n", nil, "retry.base", `:1:15: retry.base: 10m0s: must be at most retry.cap (5m0s)`},
		{"RetryCapBelowDefaultBase", "retry: {cap: 500ms}\n", nil, "retry.cap", `:1:14: retry.cap: 500ms: must be at least retry.base (1s)`},
		{"RetryBothWritten", "retry: {base: 10s, cap: 5s}\n", nil, "retry.cap", `:1:25: retry.cap: 5s: must be at least retry.base (10s)`},
		// An error class override is checked at load, by the rules of the table built from it.
		{"ErrorsWindowClosedRetried", "errors: {ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW: transient}\n", nil,
			"errors.ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW",
			`:1:60: errors.ERROR_CODE_MESSAGE_OUTSIDE_OF_ELIGIBILITY_WINDOW: a closed 24-hour window is not retried (want permanent or stop-run, not transient)`},
		{"ErrorsCodeInAnotherCase", "errors:\n  HTTP_500: permanent\n  http_500: transient\n", nil, "errors.http_500",
			`:3:3: errors.http_500: "http_500" is not an error code, error type or HTTP_<status> Herald knows (did you mean "HTTP_500"?)`},
		{"ErrorsCodeMisspelt", "errors:\n  ERROR_CODE_MESAGE_TEMPLATE_DELETED: permanent\n", nil, "errors.ERROR_CODE_MESAGE_TEMPLATE_DELETED",
			`:2:3: errors.ERROR_CODE_MESAGE_TEMPLATE_DELETED: "ERROR_CODE_MESAGE_TEMPLATE_DELETED" is not an error code, error type or HTTP_<status> Herald knows (did you mean "ERROR_CODE_MESSAGE_TEMPLATE_DELETED"?)`},
		{"ErrorsTypeLowercase", "errors:\n  error_type_authentication: permanent\n", nil, "errors.error_type_authentication",
			`:2:3: errors.error_type_authentication: "error_type_authentication" is not an error code, error type or HTTP_<status> Herald knows (did you mean "ERROR_TYPE_AUTHENTICATION"?)`},
		{"ErrorsHTTPWithoutUnderscore", "errors:\n  HTTP429: throttle\n", nil, "errors.HTTP429",
			`:2:3: errors.HTTP429: "HTTP429" is not an error code, error type or HTTP_<status> Herald knows (did you mean "HTTP_429"?)`},
		{"ErrorsHTTPSuccess", "errors:\n  HTTP_200: permanent\n", nil, "errors.HTTP_200",
			`:2:3: errors.HTTP_200: "HTTP_200" is not an error code, error type or HTTP_<status> Herald knows: want HTTP_ and a status from 300 to 599`},
		{"ErrorsUnknownName", "errors:\n  SOMETHING_NEW: permanent\n", nil, "errors.SOMETHING_NEW",
			`:2:3: errors.SOMETHING_NEW: "SOMETHING_NEW" is not an error code, error type or HTTP_<status> Herald knows (the codes and types are in the provider reference and internal/connectly/classify.go)`},
		{"PaceWaitTooLongForDefaultMargin", "retry:\n  max_pace_wait: 20m\n", nil, "retry.max_pace_wait",
			`:2:18: retry.max_pace_wait: 20m0s: too long for worker.window_margin 2m0s: with the send's longest wait after its window check ` +
				`(retry.keep_place_for 20s + 3 × retry.max_pace_wait 20m0s) it must fit in 55m0s, so that an on_reply session follow-up ` +
				`at its longest delay (23h after the reply) still goes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "herald.yaml", tc.yaml)
			_, err := config.Load(path, tc.env.get)
			checkConfigError(t, err, tc.key)
			want := tc.want
			if strings.HasPrefix(want, ":") {
				want = path + want
			}
			if err.Error() != want {
				t.Errorf("err = %q\nwant  %q", err, want)
			}
		})
	}
}

// A problem yaml reports in its list of decoding errors ("unmarshal errors:") and whose key
// cannot be found reads on one line too, with the file and line.
func TestLoadDecodeErrorListReadsOnOneLine(t *testing.T) {
	t.Parallel()
	// A list written as a key: no key to name.
	path := writeFile(t, "herald.yaml", "errors:\n  ? [HTTP_500]\n  : permanent\n")
	_, err := config.Load(path, env{}.get)
	if want := path + ":2:1: cannot unmarshal !!seq into string"; err == nil || err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

// A file whose YAML is broken is named with the line of the problem, as an editor counts
// lines: yaml's own "line N" is one less for its parser's problems (the misindented key on
// line 3 read "line 2"), and missing on the first line.
func TestLoadBrokenYAMLNamesTheLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"redis:\n  url: redis://127.0.0.1:6379/0\n worker: 1\n", ":3:1: did not find expected key"},
		{"redis:\n\turl: x\n", ":2:1: found character that cannot start any token"},
		{"```yaml\nredis: {}\n", ":1:1: found character that cannot start any token"},
		{"redis: {url: x\nworker: {}\n", ":2:1: did not find expected ',' or '}'"},
	} {
		path := writeFile(t, "herald.yaml", tc.in)
		_, err := config.Load(path, env{}.get)
		if err == nil || err.Error() != path+tc.want {
			t.Errorf("%q: err = %v, want %s%s", tc.in, err, filepath.Base(path), tc.want)
		}
	}
}

const redisSecret = "S3cretPW"

// A Redis password is never read from the config file, and never shown in an error.
func TestLoadRedisPassword(t *testing.T) {
	t.Parallel()

	t.Run("RefusedInFile", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{
			"redis://:" + redisSecret + "@127.0.0.1:6379/0",
			"rediss://herald:" + redisSecret + "@redis.internal:6380/0",
			"redis-sentinel://:" + redisSecret + "@s1:26379,s2:26379?master=m",
			"redis-cluster://:" + redisSecret + "@h1:7000,h2:7001",
			"redis://:" + redisSecret + "@127.0.0.1:63x79/0",
		} {
			for _, e := range []env{{}, {"HERALD_REDIS_URL": "redis://127.0.0.1:6379/1"}} {
				path := writeFile(t, "herald.yaml", "redis:\n  url: "+u+"\n")
				_, err := config.Load(path, e.get)
				checkConfigError(t, err, "redis.url", path+":2:8: ", "redis.password_file", "HERALD_REDIS_PASSWORD", "HERALD_REDIS_URL")
				if err != nil && strings.Contains(err.Error(), "S3c") {
					t.Errorf("err = %q shows the password", err)
				}
			}
		}
	})

	t.Run("FromEnvironmentURL", func(t *testing.T) {
		t.Parallel()
		u := "redis://:" + redisSecret + "@127.0.0.1:6379/0"
		c := mustLoad(t, "log:\n  level: info\n", env{"HERALD_REDIS_URL": u})
		if c.Redis.URL != u {
			t.Errorf("Redis.URL = %q, want HERALD_REDIS_URL's", redisx.Redact(c.Redis.URL))
		}
	})

	t.Run("FromPasswordFile", func(t *testing.T) {
		t.Parallel()
		pwFile := writeFile(t, "redis_password", "S3cret/PW@x\n")
		c := mustLoad(t, "redis:\n  url: redis://127.0.0.1:6379/2\n  password_file: "+pwFile+"\n", env{})
		checkPassword(t, c, "S3cret/PW@x", 2)
		// The variable wins over the file, as for the other secrets.
		c = mustLoad(t, "redis:\n  url: redis://127.0.0.1:6379/2\n  password_file: "+pwFile+"\n", env{"HERALD_REDIS_PASSWORD": "from-env"})
		checkPassword(t, c, "from-env", 2)
		c = mustLoad(t, "", env{"HERALD_REDIS_PASSWORD": "from-env"})
		checkPassword(t, c, "from-env", 0)
	})

	// An ACL user written in the URL logs in with the password given apart.
	t.Run("ACLUser", func(t *testing.T) {
		t.Parallel()
		pwFile := writeFile(t, "redis_password", "S3cret/PW@x\n")
		for _, u := range []string{"redis://herald@127.0.0.1:6379/2", "rediss://herald@redis.internal:6380/2"} {
			c := mustLoad(t, "redis:\n  url: "+u+"\n  password_file: "+pwFile+"\n", env{})
			checkPassword(t, c, "S3cret/PW@x", 2, "herald")
			c = mustLoad(t, "redis:\n  url: "+u+"\n", env{"HERALD_REDIS_PASSWORD": "from-env"})
			checkPassword(t, c, "from-env", 2, "herald")
		}
	})

	t.Run("MissingPasswordFile", func(t *testing.T) {
		t.Parallel()
		path := writeFile(t, "herald.yaml", "redis:\n  password_file: "+filepath.Join(t.TempDir(), "none")+"\n")
		_, err := config.Load(path, env{}.get)
		checkConfigError(t, err, "redis.password_file", path+":2:18: ")
	})

	t.Run("TwoPasswords", func(t *testing.T) {
		t.Parallel()
		_, err := load(t, "log:\n  level: info\n", env{"HERALD_REDIS_URL": "redis://:" + redisSecret + "@127.0.0.1:6379/0", "HERALD_REDIS_PASSWORD": "other"})
		checkConfigError(t, err, "redis.password_file", "HERALD_REDIS_PASSWORD", "one place")
		if err != nil && strings.Contains(err.Error(), "S3c") {
			t.Errorf("err = %q shows the password", err)
		}
	})

	t.Run("MistypedURLHidesPassword", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{
			"redis://:" + redisSecret + "@127.0.0.1:63x79/0",
			"redis://:S3c/retPW@127.0.0.1:6379/0",
			"rediss://:" + redisSecret + "@[::1/0",
			"redis-sentinel://:" + redisSecret + "@s1:2x6379?master=m",
			"redis-cluster://:" + redisSecret + "@h1:7000,h2:7x001",
			"http://:" + redisSecret + "@127.0.0.1:6379/0",
		} {
			_, err := config.Load("", env{"HERALD_REDIS_URL": u}.get)
			checkConfigError(t, err, "redis.url", "HERALD_REDIS_URL")
			if err != nil && strings.Contains(err.Error(), "S3c") {
				t.Errorf("err = %q shows the password", err)
			}
		}
		// Without a password the error says what is wrong.
		path := writeFile(t, "herald.yaml", "redis:\n  url: redis://127.0.0.1:63x79/0\n")
		_, err := config.Load(path, env{}.get)
		checkConfigError(t, err, "redis.url", path+":2:8: ", `invalid port ":63x79"`)
	})
}

// checkPassword asserts the config's Redis URL connects with password to database db, as the
// user named if any.
func checkPassword(t *testing.T, c config.Config, password string, db int, user ...string) {
	t.Helper()
	opt, err := redisx.ConnOpt(c.Redis.URL)
	if err != nil {
		t.Fatalf("ConnOpt: %v", err)
	}
	o, ok := opt.(asynq.RedisClientOpt)
	if !ok || o.Password != password || o.DB != db {
		t.Errorf("connection options %T with the password %v and db %d, want %q and %d", opt, o.Password == password, o.DB, password, db)
	}
	if len(user) > 0 && o.Username != user[0] {
		t.Errorf("connection options for the user %q, want %q", o.Username, user[0])
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		t.Fatal(ce)
	}
}
