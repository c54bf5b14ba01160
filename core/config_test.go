package core_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

func TestPresetsValidate(t *testing.T) {
	for name, c := range map[string]core.Config{"DefaultConfig": core.DefaultConfig(), "SimConfig": core.SimConfig()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// The paper's parameters (Rowstron & Druschel 2001, section 3.1).
		if c.B != 4 || c.LeafSetSize != 16 || c.NeighborhoodSize != 32 {
			t.Errorf("%s: b=%d L=%d M=%d, want the paper's 4, 16, 32", name, c.B, c.LeafSetSize, c.NeighborhoodSize)
		}
	}
}

// TestConfigValidateNamesEachField breaks one field at a time and expects an
// ErrConfig naming that field. It also fails if Config grows a field that no
// case covers, so a new field cannot go unvalidated unnoticed.
func TestConfigValidateNamesEachField(t *testing.T) {
	cases := []struct {
		field string // as named in the error
		set   func(*core.Config)
	}{
		{"B", func(c *core.Config) { c.B = 0 }},
		{"B", func(c *core.Config) { c.B = 3 }},
		{"B", func(c *core.Config) { c.B = 16 }},
		{"LeafSetSize", func(c *core.Config) { c.LeafSetSize = 0 }},
		{"LeafSetSize", func(c *core.Config) { c.LeafSetSize = 15 }},
		{"LeafSetSize", func(c *core.Config) { c.LeafSetSize = 258 }},
		{"NeighborhoodSize", func(c *core.Config) { c.NeighborhoodSize = -1 }},
		{"NeighborhoodSize", func(c *core.Config) { c.NeighborhoodSize = 1025 }},
		{"HeartbeatInterval", func(c *core.Config) { c.HeartbeatInterval = 0 }},
		{"HeartbeatInterval", func(c *core.Config) { c.HeartbeatInterval = -time.Second }},
		{"NeighborSilence", func(c *core.Config) { c.NeighborSilence = c.HeartbeatInterval }},
		{"ProbeTimeout", func(c *core.Config) { c.ProbeTimeout = 0 }},
		{"ProbeRetries", func(c *core.Config) { c.ProbeRetries = -1 }},
		{"ProbeRetries", func(c *core.Config) { c.ProbeRetries = 17 }},
		{"HopTimeoutFactor", func(c *core.Config) { c.HopTimeoutFactor = 0 }},
		{"HopTimeoutFactor", func(c *core.Config) { c.HopTimeoutFactor = 1001 }},
		{"HopTimeoutMin", func(c *core.Config) { c.HopTimeoutMin = 0 }},
		{"HopTimeoutMax", func(c *core.Config) { c.HopTimeoutMax = c.HopTimeoutMin - 1 }},
		{"MaxReroutes", func(c *core.Config) { c.MaxReroutes = -1 }},
		{"MaxReroutes", func(c *core.Config) { c.MaxReroutes = 65 }},
		{"MaxHops", func(c *core.Config) { c.MaxHops = 0 }},
		{"MaxHops", func(c *core.Config) { c.MaxHops = 1025 }},
		{"RowExchangeInterval", func(c *core.Config) { c.RowExchangeInterval = -1 }},
		{"StateProbeInterval", func(c *core.Config) { c.StateProbeInterval = -1 }},
		{"JoinTimeout", func(c *core.Config) { c.JoinTimeout = 0 }},
		{"JoinRetries", func(c *core.Config) { c.JoinRetries = -1 }},
		{"DeadRetention", func(c *core.Config) { c.DeadRetention = -1 }},
		{"ProbeLossTarget", func(c *core.Config) { c.ProbeLossTarget = 1 }},
		{"ProbeLossTarget", func(c *core.Config) { c.ProbeLossTarget = -0.1 }},
		{"StateProbeMin", func(c *core.Config) { c.StateProbeMin = c.StateProbeInterval + 1 }},
		{"MaxHandles", func(c *core.Config) { c.MaxHandles = c.LeafSetSize }},
		{"MaxHandles", func(c *core.Config) { c.B, c.MaxHandles = 8, 255 }},
		{"MaxPayload", func(c *core.Config) { c.MaxPayload = -1 }},
		{"MaxPerAddrGroup", func(c *core.Config) { c.MaxPerAddrGroup = -1 }},
		{"MaxPerAddrGroup", func(c *core.Config) { c.MaxPerAddrGroup = 1025 }},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		c := core.DefaultConfig()
		tc.set(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: invalid value accepted", tc.field)
			continue
		}
		if !errors.Is(err, core.ErrConfig) {
			t.Errorf("%s: error %q does not wrap ErrConfig", tc.field, err)
		}
		// "HopTimeoutMin/Max" names both fields.
		msg := err.Error()
		named := strings.Contains(msg, ": "+tc.field+" = ") ||
			strings.Contains(msg, ": HopTimeoutMin/Max = ") && strings.HasPrefix(tc.field, "HopTimeout") && tc.field != "HopTimeoutFactor"
		if !named {
			t.Errorf("%s: error %q does not name the field", tc.field, msg)
		}
		covered[tc.field] = true
		// NewMachine refuses the same config with the same error, no panic.
		n, nerr := core.NewMachine(c, id.Handle{ID: id.MustParse("0123456789abcdef0123456789abcdef")}, newTestEnv(1))
		if n != nil || nerr == nil || nerr.Error() != msg {
			t.Errorf("%s: NewMachine = %v, %v; want nil, %q", tc.field, n, nerr, msg)
		}
	}
	ct := reflect.TypeFor[core.Config]()
	for i := range ct.NumField() {
		if f := ct.Field(i); !covered[f.Name] && f.Type.Kind() != reflect.Bool { // a switch has no invalid value
			t.Errorf("Config.%s: no case breaks it", f.Name)
		}
	}
}

// TestConfigValidateBoundaries accepts the edges of every range, so the
// checks above are not passing because everything is refused.
func TestConfigValidateBoundaries(t *testing.T) {
	good := []func(*core.Config){
		func(c *core.Config) { c.B = 1 },
		func(c *core.Config) { c.B = 2 },
		func(c *core.Config) { c.B, c.MaxHandles = 8, 256 },
		func(c *core.Config) { c.LeafSetSize = 2 },
		func(c *core.Config) { c.LeafSetSize = 256 },
		func(c *core.Config) { c.NeighborhoodSize = 0 },
		func(c *core.Config) { c.NeighborhoodSize = 1024 },
		func(c *core.Config) { c.NeighborSilence = c.HeartbeatInterval + 1 },
		func(c *core.Config) { c.ProbeRetries = 0 },
		func(c *core.Config) { c.ProbeRetries = 16 },
		func(c *core.Config) { c.HopTimeoutFactor = 1 },
		func(c *core.Config) { c.HopTimeoutMax = c.HopTimeoutMin },
		func(c *core.Config) { c.MaxReroutes = 0 },
		func(c *core.Config) { c.MaxReroutes = 64 },
		func(c *core.Config) { c.MaxHops = 1 },
		func(c *core.Config) { c.MaxHops = 1024 },
		func(c *core.Config) { c.RowExchangeInterval = 0 },
		func(c *core.Config) { c.StateProbeInterval = 0 },
		func(c *core.Config) { c.JoinRetries = 0 },
		func(c *core.Config) { c.DeadRetention = 0 },
		func(c *core.Config) { c.ProbeLossTarget, c.StateProbeMin = 0, 0 },
		func(c *core.Config) { c.StateProbeMin = c.StateProbeInterval },
		func(c *core.Config) { c.MaxHandles = c.LeafSetSize + 1 },
		func(c *core.Config) { c.MaxPayload = 0 },
	}
	for i, set := range good {
		c := core.DefaultConfig()
		set(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestNewNode(t *testing.T) {
	self := id.Handle{ID: id.MustParse("0123456789abcdef0123456789abcdef")}
	n, err := core.NewMachine(core.DefaultConfig(), self, nil)
	if n != nil || !errors.Is(err, core.ErrConfig) || !strings.Contains(err.Error(), "Environment") {
		t.Fatalf("nil env: NewMachine = %v, %v; want an ErrConfig naming the Environment", n, err)
	}
	n, err = core.NewMachine(core.Config{}, self, newTestEnv(1))
	if n != nil || !errors.Is(err, core.ErrConfig) {
		t.Fatalf("zero config: NewMachine = %v, %v", n, err)
	}
	n, err = core.NewMachine(core.SimConfig(), self, newTestEnv(1))
	if err != nil {
		t.Fatal(err)
	}
	if n.Self() != self || n.Status() != core.StatusIdle || n.Config() != core.SimConfig() {
		t.Fatalf("new node: self %v status %v config %+v", n.Self(), n.Status(), n.Config())
	}
	if rd := n.Ready(); len(rd.Messages) != 0 || rd.WakeAt != 0 {
		t.Fatalf("an idle node wants something: %+v", rd)
	}
}
