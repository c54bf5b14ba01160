package pastry_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/pastrynet/pastry"
	"github.com/pastrynet/pastry/core"
	"github.com/pastrynet/pastry/id"
)

// echoApp is an application: at a key's root it receives the messages
// routed to the key under its application id, and echoes each straight
// back to the node that routed it (Endpoint.Send: one hop, acknowledged);
// at that node it receives the echo. It acts only through its Endpoint,
// from its upcalls, so it runs unchanged in the simulator.
type echoApp struct {
	ep     *core.Endpoint
	echoes chan string
}

// Registered is called with the Endpoint before any other upcall.
func (a *echoApp) Registered(ep *core.Endpoint) { a.ep = ep }

func (a *echoApp) Deliver(m *core.Message) {
	switch m.Type {
	case core.MsgRoute: // at the key's root
		_ = a.ep.Send(m.Origin, append([]byte("echo: "), m.Payload...))
	case core.MsgDirect: // the echo, back at the origin
		a.echoes <- string(m.Payload)
	}
}

func (*echoApp) Forward(*core.Message, *id.Handle) bool { return true }

func (*echoApp) Update(id.Handle, bool) {}

// Pastry attached to libp2p hosts built the usual way: an Ed25519
// identity, loopback TCP without port reuse (see the README), the rest
// go-libp2p's defaults. One node starts an overlay, the other joins
// through it; a lookup finds the root of a key, and a message routed to
// the key reaches the application there, which echoes it back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newHost := func() host.Host {
		priv, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			log.Fatal(err)
		}
		h, err := libp2p.New(libp2p.Identity(priv),
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
			libp2p.DisableRelay(), libp2p.ForceReachabilityPrivate())
		if err != nil {
			log.Fatal(err)
		}
		return h
	}
	const appID core.AppID = 7
	var nodes []*pastry.Node
	var hosts []host.Host
	var apps []*echoApp
	for i := range 2 {
		h := newHost()
		defer h.Close()
		n, err := pastry.New(h)
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close() // before the host
		app := &echoApp{echoes: make(chan string, 1)}
		if _, err := n.RegisterApplication(appID, app); err != nil {
			log.Fatal(err)
		}
		var via []peer.AddrInfo // none: start a new overlay
		if i > 0 {
			via = append(via, peer.AddrInfo{ID: hosts[0].ID(), Addrs: hosts[0].Addrs()})
		}
		if err := n.Join(ctx, via...); err != nil {
			log.Fatal(err)
		}
		nodes, hosts, apps = append(nodes, n), append(hosts, h), append(apps, app)
	}

	// The second node looks up the first one's id: the first is its root.
	res, err := nodes[1].Lookup(ctx, nodes[0].ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("root is the first node:", res.Root == nodes[0].ID(), res.RootPeer == hosts[0].ID())

	// A message routed to the first node's id is delivered there, and
	// its echo comes back.
	if err := nodes[1].Route(ctx, nodes[0].ID(), appID, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	select {
	case got := <-apps[1].echoes:
		fmt.Println("back from the root:", got)
	case <-ctx.Done():
		log.Fatal("no echo")
	}
	// Output:
	// root is the first node: true true
	// back from the root: echo: hello
}
