package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/transport"
)

// env is a fake environment for loadNodeConfig.
type env map[string]string

func (e env) get(k string) string { return e[k] }

const testPeer = "12D3KooWJUJMZsjsNcejwukChAtPoHNqe8sQVfdmyibZB1Hs9YAT"

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pastry.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadNodeConfig([]string{"--data-dir", t.TempDir()}, env{}.get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.API != defaultAPI || !slices.Equal(c.Listen, defaultListen) || c.SaveInterval != defaultSaveInterval ||
		c.ConnsLow != 256 || c.ConnsHigh != 384 || c.Token != "" || len(c.Bootstrap) != 0 || c.policy != transport.AddrsAll {
		t.Fatalf("defaults: %+v", c)
	}
}

// fileConfigAll is a config file that sets every kind of setting (the
// precedence test's and a fuzz seed).
const fileConfigAll = `{
		"listen": ["/ip4/127.0.0.1/tcp/1001"],
		"announce": ["/ip4/203.0.113.7/tcp/1001"],
		"bootstrap": ["/ip4/127.0.0.1/tcp/1/p2p/` + testPeer + `"],
		"data_dir": "/from/file",
		"api": "127.0.0.1:1111",
		"protocol_prefix": "/file",
		"log_level": "debug",
		"save_interval": "5s",
		"conns_low": 10,
		"conns_high": 20,
		"addr_policy": "private",
		"pprof": true,
		"store_capacity": 1000000,
		"owner_quota": 100000,
		"route_cache": 5000
	}`

// TestConfigPrecedence checks flag > env > file > default for every kind
// of setting.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, fileConfigAll)
	t.Run("file beats default", func(t *testing.T) {
		c, err := loadNodeConfig([]string{"--config", file}, env{}.get, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.DataDir != "/from/file" || c.API != "127.0.0.1:1111" || c.ProtocolPrefix != "/file" ||
			c.SaveInterval != 5*time.Second || c.ConnsLow != 10 || c.ConnsHigh != 20 ||
			!slices.Equal(c.Listen, []string{"/ip4/127.0.0.1/tcp/1001"}) || len(c.bootstrap) != 1 || c.policy != transport.AddrsPrivate ||
			!slices.Equal(c.Announce, []string{"/ip4/203.0.113.7/tcp/1001"}) || !c.Pprof ||
			c.StoreCapacity != 1000000 || c.OwnerQuota != 100000 || c.RouteCache != 5000 {
			t.Fatalf("%+v", c)
		}
		if c.from("api") != `config file `+file+`: key "api"` {
			t.Errorf("origin of api: %q", c.from("api"))
		}
	})
	t.Run("env beats file", func(t *testing.T) {
		e := env{
			"PASTRY_CONFIG": file, "PASTRY_DATA_DIR": "/from/env", "PASTRY_API": "127.0.0.1:2222",
			"PASTRY_LISTEN": "/ip4/127.0.0.1/tcp/2001, /ip4/127.0.0.1/udp/2001/quic-v1", "PASTRY_SAVE_INTERVAL": "7s",
			"PASTRY_CONNS_HIGH": "30", "PASTRY_ADDR_POLICY": "all", "PASTRY_PPROF": "false", "PASTRY_ANNOUNCE": "/dns4/a.example/tcp/1 /ip6/2001:db8::1/udp/2/quic-v1",
			"PASTRY_STORE_CAPACITY": "2000000",
		}
		c, err := loadNodeConfig(nil, e.get, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.DataDir != "/from/env" || c.API != "127.0.0.1:2222" || c.SaveInterval != 7*time.Second ||
			c.ConnsHigh != 30 || c.ConnsLow != 10 || c.ProtocolPrefix != "/file" || c.policy != transport.AddrsAll || c.Pprof ||
			c.StoreCapacity != 2000000 || c.OwnerQuota != 100000 ||
			!slices.Equal(c.Announce, []string{"/dns4/a.example/tcp/1", "/ip6/2001:db8::1/udp/2/quic-v1"}) ||
			!slices.Equal(c.Listen, []string{"/ip4/127.0.0.1/tcp/2001", "/ip4/127.0.0.1/udp/2001/quic-v1"}) {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("flag beats env", func(t *testing.T) {
		e := env{"PASTRY_CONFIG": "/does/not/exist.json", "PASTRY_DATA_DIR": "/from/env", "PASTRY_API": "127.0.0.1:2222", "PASTRY_TOKEN": "env-token-0123456789", "PASTRY_PPROF": "1"}
		c, err := loadNodeConfig([]string{
			"--config", file, "--data-dir", "/from/flag", "--api", "127.0.0.1:3333",
			"--listen", "/ip4/127.0.0.1/tcp/3001", "--listen", "/ip4/127.0.0.1/tcp/3002",
			"--token", "flag-token-0123456789", "--protocol-prefix", "/flag", "--addr-policy", "Public",
			"--bootstrap", "/ip4/8.8.8.8/tcp/1/p2p/" + testPeer, "--pprof=false", "--route-cache", "7",
		}, e.get, io.Discard)
		if err != nil {
			t.Fatal(err) // --config wins over PASTRY_CONFIG, which does not exist
		}
		if c.DataDir != "/from/flag" || c.API != "127.0.0.1:3333" || c.Token != "flag-token-0123456789" ||
			c.ProtocolPrefix != "/flag" || c.LogLevel != "debug" || c.policy != transport.AddrsPublic || c.Pprof || c.RouteCache != 7 ||
			!slices.Equal(c.Listen, []string{"/ip4/127.0.0.1/tcp/3001", "/ip4/127.0.0.1/tcp/3002"}) {
			t.Fatalf("%+v", c)
		}
		if c.from("api") != "--api" || c.from("token") != "--token" || c.from("log_level") != `config file `+file+`: key "log_level"` {
			t.Errorf("origins: %v", c.origin)
		}
	})
	t.Run("empty env is unset", func(t *testing.T) {
		c, err := loadNodeConfig([]string{"--config", file}, env{"PASTRY_API": "", "PASTRY_DATA_DIR": ""}.get, io.Discard)
		if err != nil || c.API != "127.0.0.1:1111" || c.DataDir != "/from/file" {
			t.Fatalf("%+v %v", c, err)
		}
	})
}

// TestConfigErrors checks that each bad value is refused with an error
// naming where it came from and what is wanted.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		env  env
		file string
		want []string // substrings of the error
	}{
		{"bad listen", []string{"--listen", "/ip4/1.2.3/tcp/1"}, nil, "", []string{"--listen", "bad multiaddr"}},
		{"listen without transport", []string{"--listen", "/ip4/127.0.0.1/udp/1"}, nil, "", []string{"--listen", "unsupported transport"}},
		{"listen with peer", []string{"--listen", "/ip4/127.0.0.1/tcp/1/p2p/" + testPeer}, nil, "", []string{"must not name a peer"}},
		{"bootstrap without peer", []string{"--bootstrap", "/ip4/127.0.0.1/tcp/1"}, nil, "", []string{"--bootstrap", "/p2p/PEERID"}},
		{"bootstrap from env", nil, env{"PASTRY_BOOTSTRAP": "garbage"}, "", []string{"PASTRY_BOOTSTRAP", "bad multiaddr"}},
		{"api without port", []string{"--api", "127.0.0.1"}, nil, "", []string{"--api", "HOST:PORT"}},
		{"api bad port", []string{"--api", "127.0.0.1:99999"}, nil, "", []string{"--api", "0 to 65535"}},
		{"public api without token", []string{"--api", "0.0.0.0:7700"}, nil, "", []string{"--api", "--token"}},
		{"all interfaces without token", nil, env{"PASTRY_API": ":7700"}, "", []string{"PASTRY_API", "--token"}},
		{"short token", []string{"--token", "short"}, nil, "", []string{"--token", "16 to 256"}},
		{"token with space", []string{"--token", "0123456789 abcdefgh"}, nil, "", []string{"printable"}},
		{"prefix", []string{"--protocol-prefix", "net/"}, nil, "", []string{"--protocol-prefix", "/NAME"}},
		{"log level", nil, env{"PASTRY_LOG_LEVEL": "loud"}, "", []string{"PASTRY_LOG_LEVEL", "debug, info"}},
		{"save interval", []string{"--save-interval", "10ms"}, nil, "", []string{"--save-interval", "1s to 1h"}},
		{"save interval env", nil, env{"PASTRY_SAVE_INTERVAL": "often"}, "", []string{"PASTRY_SAVE_INTERVAL", "not a duration"}},
		{"conns", []string{"--conns-low", "100", "--conns-high", "50"}, nil, "", []string{"--conns-high", "100 (conns_low)"}},
		{"conns env", nil, env{"PASTRY_CONNS_LOW": "many"}, "", []string{"PASTRY_CONNS_LOW", "not an integer"}},
		{"announce bad", []string{"--announce", "/ip4/1.2.3/tcp/1"}, nil, "", []string{"--announce", "bad multiaddr"}},
		{"announce unspecified", []string{"--announce", "/ip4/0.0.0.0/tcp/7701"}, nil, "", []string{"--announce", "unspecified IP"}},
		{"announce port 0", nil, env{"PASTRY_ANNOUNCE": "/ip4/203.0.113.7/udp/0/quic-v1"}, "", []string{"PASTRY_ANNOUNCE", "port 0"}},
		{"announce peer", nil, nil, `{"announce": ["/ip4/203.0.113.7/tcp/1/p2p/` + testPeer + `"]}`, []string{`key "announce"`, "must not name a peer"}},
		{"announce transport", []string{"--announce", "/ip4/203.0.113.7/udp/1"}, nil, "", []string{"--announce", "unsupported transport"}},
		{"addr policy", []string{"--addr-policy", "lan"}, nil, "", []string{"--addr-policy", "want all, public or private"}},
		{"addr policy env", nil, env{"PASTRY_ADDR_POLICY": "none"}, "", []string{"PASTRY_ADDR_POLICY", "want all, public"}},
		{"addr policy file", nil, nil, `{"addr_policy": 1}`, []string{"addr_policy"}},
		{"bootstrap refused by policy", []string{"--addr-policy", "public", "--bootstrap", "/ip4/127.0.0.1/tcp/1/p2p/" + testPeer}, nil, "",
			[]string{"--bootstrap", "127.0.0.1", `policy "public"`, "--addr-policy"}},
		{"bootstrap refused by file policy", []string{"--bootstrap", "/ip4/8.8.8.8/tcp/1/p2p/" + testPeer}, nil, `{"addr_policy": "private"}`,
			[]string{"--bootstrap", "8.8.8.8", `policy "private"`, `key "addr_policy"`}},
		{"pprof env", nil, env{"PASTRY_PPROF": "yes"}, "", []string{"PASTRY_PPROF", "not a boolean"}},
		{"pprof file", nil, nil, `{"pprof": "true"}`, []string{"pprof"}},
		{"pprof without api", []string{"--pprof", "--api", "off"}, nil, "", []string{"--pprof", "--api", "turns off"}},
		{"no listen", nil, nil, `{"listen": []}`, []string{`key "listen"`, "at least one"}},
		{"unknown key", nil, nil, `{"listn": ["/ip4/127.0.0.1/tcp/1"]}`, []string{"--config", `unknown field "listn"`}},
		{"syntax", nil, nil, "{\n  \"api\": \"127.0.0.1:1\",\n  oops\n}", []string{"line 3, column"}},
		{"type", nil, nil, `{"conns_low": "ten"}`, []string{"line 1", "conns_low"}},
		{"two values", nil, nil, `{} {}`, []string{"more than one JSON value"}},
		{"file duration", nil, nil, `{"save_interval": 5}`, []string{"save_interval"}},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.json")}, nil, "", []string{"--config", "cannot read"}},
		{"stray argument", []string{"extra"}, nil, "", []string{"unexpected argument"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", dir}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeConfig(t, tc.file))
			}
			e := tc.env
			if e == nil {
				e = env{}
			}
			_, err := loadNodeConfig(args, e.get, io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCheckAPIBind(t *testing.T) {
	const tok = "0123456789abcdef"
	for _, tc := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:7700", "", true},
		{"127.0.0.2:7700", "", true},
		{"[::1]:7700", "", true},
		{"localhost:7700", "", true},
		{"127.0.0.1:0", "", true},
		{"0.0.0.0:7700", "", false},
		{":7700", "", false},
		{"[::]:7700", "", false},
		{"192.168.1.5:7700", "", false},
		{"example.com:7700", "", false},
		{"0.0.0.0:7700", tok, true},
		{"192.168.1.5:7700", tok, true},
		{"nonsense", tok, false},
		{"127.0.0.1:http", "", false},
	} {
		err := checkAPIBind(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("checkAPIBind(%q, token=%v) = %v, want ok=%v", tc.addr, tc.token != "", err, tc.ok)
		}
	}
}

func TestPrepareDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := prepareDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v %v", st.Mode(), err)
	}
	// A path through a regular file can never be created (even by root).
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if err := prepareDataDir(filepath.Join(file, "sub")); err == nil || !strings.Contains(err.Error(), "cannot create the data directory") {
		t.Fatalf("data dir under a file: %v", err)
	}
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(t.TempDir(), "ro")
		os.Mkdir(ro, 0o500)
		if err := prepareDataDir(ro); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only data dir: %v", err)
		}
	}
}

// The byte settings of the store refuse negative and absurd values, naming
// where they came from.
func TestConfigStoreBytesRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  env
		want string
	}{
		{[]string{"--store-capacity", "-1"}, env{}, "--store-capacity"},
		{nil, env{"PASTRY_OWNER_QUOTA": "lots"}, "PASTRY_OWNER_QUOTA"},
		{nil, env{"PASTRY_ROUTE_CACHE": "9223372036854775807"}, "PASTRY_ROUTE_CACHE"},
	} {
		_, err := loadNodeConfig(append([]string{"--data-dir", "/tmp/x"}, tc.args...), tc.env.get, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}
