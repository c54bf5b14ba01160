package scenario_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
	"github.com/pastrynet/pastry/simnet"
	"github.com/pastrynet/pastry/simnet/scenario"
)

// TestExtension shows how an application extends the language: mailbox
// adds an application that sends notes straight to a node (Endpoint.Send)
// and the commands send and inbox (testdata/*.txt).
func TestExtension(t *testing.T) {
	scenario.Walk(t, "testdata", func(s *scenario.Scenario) []scenario.Extension {
		return []scenario.Extension{&mailbox{s: s, boxes: map[int][]string{}}}
	})
}

const mailAppID core.AppID = 0x6d61

// mailbox is the extension: one mailApp per node, and its commands
//
//	send from=1 to=2 text=hi        a note straight from node 1 to node 2
//	inbox i=2                       the notes node 2 received, in order
type mailbox struct {
	s     *scenario.Scenario
	eps   map[int]*core.Endpoint
	boxes map[int][]string
}

type mailApp struct {
	mb  *mailbox
	idx int
}

func (a *mailApp) Deliver(m *core.Message) {
	a.mb.boxes[a.idx] = append(a.mb.boxes[a.idx], fmt.Sprintf("%q from %s", m.Payload, a.mb.s.Name(a.mb.index(m.From))))
}
func (a *mailApp) Forward(*core.Message, *id.Handle) bool { return true }
func (a *mailApp) Update(id.Handle, bool)                 {}

func (mb *mailbox) index(h id.Handle) int {
	n, _ := mb.s.Net().Lookup(h.ID)
	return n.Index
}

func (mb *mailbox) Attach(n *simnet.Host) error {
	ep, err := n.RegisterApplication(mailAppID, &mailApp{mb: mb, idx: n.Index})
	if mb.eps == nil {
		mb.eps = map[int]*core.Endpoint{}
	}
	mb.eps[n.Index] = ep
	return err
}

func (mb *mailbox) Command(t *testing.T, td *datadriven.TestData, out *strings.Builder) bool {
	switch td.Cmd {
	case "send":
		var from, to int
		var text string
		td.ScanArgs(t, "from", &from)
		td.ScanArgs(t, "to", &to)
		td.ScanArgs(t, "text", &text)
		nw := mb.s.Net()
		var err error
		nw.RunOn(from, func() { err = mb.eps[from].Send(nw.Node(to).Self(), []byte(text)) })
		if err != nil {
			fmt.Fprintf(out, "error: %v", err)
		}
	case "inbox":
		for _, i := range mb.s.Nodes(t, td, "i") {
			fmt.Fprintf(out, "%s: %s\n", mb.s.Name(i), strings.Join(mb.boxes[i], ", "))
		}
	default:
		return false
	}
	return true
}
