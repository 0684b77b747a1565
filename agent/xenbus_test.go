package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// xsServer is a small in-test xenstore speaking the wire protocol over a Unix socket: enough
// of XS_READ, XS_WRITE, XS_RM, XS_DIRECTORY, XS_WATCH and XS_UNWATCH to test the client.
// It sends a watch's registration event before the XS_WATCH reply, the harder interleaving.
type xsServer struct {
	t       *testing.T
	ln      net.Listener
	mu      sync.Mutex
	nodes   map[string]string
	watches []xsWatchReg
	conns   []*xsConn
}

type xsWatchReg struct {
	c           *xsConn
	path, token string
}

type xsConn struct {
	net.Conn
	wmu sync.Mutex
}

func (c *xsConn) send(m xsMsg) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.Write(encodeXsMsg(m))
}

func newXsServer(t *testing.T) (*xsServer, string) {
	dir, err := os.MkdirTemp("", "tvd-xs-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "xenbus.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &xsServer{t: t, ln: ln, nodes: map[string]string{}}
	t.Cleanup(func() { s.closeAll(); os.RemoveAll(dir) })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &xsConn{Conn: nc}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go s.serveConn(c)
		}
	}()
	return s, sock
}

func (s *xsServer) closeAll() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *xsServer) serveConn(c *xsConn) {
	for {
		m, err := readXsMsg(c)
		if err != nil {
			return
		}
		args := strings.Split(string(m.payload), "\x00")
		reply := func(p string) { c.send(xsMsg{typ: m.typ, reqID: m.reqID, payload: []byte(p)}) }
		fail := func(e string) { c.send(xsMsg{typ: xsError, reqID: m.reqID, payload: []byte(e + "\x00")}) }
		switch m.typ {
		case xsRead:
			s.mu.Lock()
			v, ok := s.nodes[args[0]]
			s.mu.Unlock()
			if !ok {
				fail("ENOENT")
				continue
			}
			reply(v)
		case xsWrite:
			i := bytes.IndexByte(m.payload, 0)
			s.set(string(m.payload[:i]), string(m.payload[i+1:]))
			reply("OK\x00")
		case xsRm:
			s.mu.Lock()
			_, ok := s.nodes[args[0]]
			delete(s.nodes, args[0])
			s.mu.Unlock()
			if !ok {
				fail("ENOENT")
				continue
			}
			s.fire(args[0])
			reply("OK\x00")
		case xsDirectory:
			s.mu.Lock()
			var kids []string
			for k := range s.nodes {
				if rest, ok := strings.CutPrefix(k, args[0]+"/"); ok && !strings.Contains(rest, "/") {
					kids = append(kids, rest+"\x00")
				}
			}
			s.mu.Unlock()
			reply(strings.Join(kids, ""))
		case xsWatch:
			s.mu.Lock()
			s.watches = append(s.watches, xsWatchReg{c, args[0], args[1]})
			s.mu.Unlock()
			c.send(xsMsg{typ: xsWatchEvent, payload: []byte(args[0] + "\x00" + args[1] + "\x00")})
			reply("OK\x00")
		case xsUnwatch:
			s.mu.Lock()
			for i, w := range s.watches {
				if w.c == c && w.path == args[0] && w.token == args[1] {
					s.watches = append(s.watches[:i], s.watches[i+1:]...)
					break
				}
			}
			s.mu.Unlock()
			reply("OK\x00")
		default:
			fail("EINVAL")
		}
	}
}

// set writes a node as dom0 would and fires the watches on it.
func (s *xsServer) set(path, value string) {
	s.mu.Lock()
	s.nodes[path] = value
	s.mu.Unlock()
	s.fire(path)
}

func (s *xsServer) get(path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.nodes[path]
	return v, ok
}

func (s *xsServer) fire(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watches {
		if path == w.path || strings.HasPrefix(path, w.path+"/") {
			w.c.send(xsMsg{typ: xsWatchEvent, payload: []byte(path + "\x00" + w.token + "\x00")})
		}
	}
}

func eventsWithin(x *xenbus, d time.Duration) (map[string]bool, error) {
	type res struct {
		m   map[string]bool
		err error
	}
	ch := make(chan res, 1)
	go func() { m, err := x.takeEvents(); ch <- res{m, err} }()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-time.After(d):
		return nil, nil
	}
}

func TestXenbusClient(t *testing.T) {
	srv, sock := newXsServer(t)
	x, err := openXenbus(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()

	if _, err := x.Read("data/tvd/report"); !errors.Is(err, errNoEnt) {
		t.Fatalf("read of a missing node: %v, want ENOENT", err)
	}
	if err := x.Write("data/tvd/report", `{"a":1}`); err != nil {
		t.Fatal(err)
	}
	if v, err := x.Read("data/tvd/report"); err != nil || v != `{"a":1}` {
		t.Fatalf("read back %q, %v", v, err)
	}
	x.Write("data/tvd/response", "r")
	kids, err := x.Directory("data/tvd")
	if err != nil || strings.Join(kids, ",") != "report,response" && strings.Join(kids, ",") != "response,report" {
		t.Fatalf("directory: %v, %v", kids, err)
	}
	if err := x.Rm("data/tvd/response"); err != nil {
		t.Fatal(err)
	}
	if err := x.Rm("data/tvd/response"); !errors.Is(err, errNoEnt) {
		t.Fatalf("second rm: %v, want ENOENT", err)
	}
	if err := x.Write("data/tvd/big", strings.Repeat("x", xsPayloadMax)); err == nil {
		t.Fatal("a write over XENSTORE_PAYLOAD_MAX was sent")
	}

	// A watch fires once at registration (here before its reply arrives), then on each change.
	if err := x.Watch("data/tvd/request", "tok-r"); err != nil {
		t.Fatal(err)
	}
	if ev, _ := eventsWithin(x, time.Second); !ev["tok-r"] {
		t.Fatalf("no registration event: %v", ev)
	}
	srv.set("data/tvd/request", "one")
	srv.set("data/tvd/request", "two") // coalesced with the previous one if not yet taken
	if ev, _ := eventsWithin(x, time.Second); !ev["tok-r"] {
		t.Fatalf("no event for a write: %v", ev)
	}
	if err := x.Unwatch("data/tvd/request", "tok-r"); err != nil {
		t.Fatal(err)
	}
	eventsWithin(x, 100*time.Millisecond) // drain a second coalesced event if any
	srv.set("data/tvd/request", "three")
	if ev, _ := eventsWithin(x, 200*time.Millisecond); ev != nil {
		t.Fatalf("event after unwatch: %v", ev)
	}

	// A lost connection fails requests and event waits instead of hanging.
	srv.closeAll()
	if _, err := eventsWithin(x, 2*time.Second); err == nil {
		t.Fatal("takeEvents did not report the lost connection")
	}
	if _, err := x.Read("data/tvd/report"); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("read on a lost connection: %v", err)
	}
}

// TestRun is `tvd-agent run` end to end: a real TPM 2.0, the in-test xenstore as dom0.
func TestRun(t *testing.T) {
	tpmSim := newSwtpm(t, true)
	cfg := writeConfig(t, tpmSim.dir, "agent.json")
	srv, sock := newXsServer(t)
	srv.set(nodeRequest, "stale") // left from before this start: answered once the watch registers

	exit := make(chan int, 1)
	go func() {
		code, _ := runCLI(t, nil, "run", "--tpm", tpmSim.sock, "--xenbus", sock, "--config", cfg,
			"--state", filepath.Join(tpmSim.dir, "state"))
		exit <- code
	}()
	waitReport := func(request string) Report {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if v, ok := srv.get(nodeReport); ok {
				var r Report
				if err := json.Unmarshal([]byte(v), &r); err != nil {
					t.Fatalf("report node is not JSON: %v", err)
				}
				if r.Request == request {
					return r
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no report for request %q", request)
		return Report{}
	}
	first := waitReport("stale")
	if first.Error != "" || first.TPM != "2.0" {
		t.Fatalf("report: %+v", first)
	}
	srv.set(nodeRequest, "t-1")
	if r := waitReport("t-1"); !bytes.Equal(r.EK, first.EK) || !bytes.Equal(r.AK, first.AK) {
		t.Fatalf("report for t-1 differs: %+v", r)
	}

	ch := challenge20(t, first.EK, first.AK, []byte("over xenstore"))
	ch.ID = "0a1b"
	raw, _ := json.Marshal(ch)
	srv.set(nodeChallenge, string(raw))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := srv.get(nodeResponse); ok {
			var r Response
			json.Unmarshal([]byte(v), &r)
			if r.ID == "0a1b" {
				if r.Error != "" || string(r.Secret) != "over xenstore" {
					t.Fatalf("response: %+v", r)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no response to the challenge")
		}
		time.Sleep(20 * time.Millisecond)
	}

	req, _ := json.Marshal(QuoteRequest{ID: "q-xs", TPM: "2.0", Nonce: nonceA, PCRs: []int{4, 5}, Bank: "sha256"})
	srv.set(nodeQuoteReq, string(req))
	deadline = time.Now().Add(20 * time.Second)
	for {
		if v, ok := srv.get(nodeQuote); ok {
			var q Quote
			json.Unmarshal([]byte(v), &q)
			if q.ID == "q-xs" {
				if q.Error != "" || len(q.Attest) == 0 || len(q.Signature) == 0 || len(q.PCRs) != 2 {
					t.Fatalf("quote: %+v", q)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no answer to the quote request")
		}
		time.Sleep(20 * time.Millisecond)
	}

	srv.closeAll()
	select {
	case code := <-exit:
		if code == 0 {
			t.Fatal("run exited 0 after losing xenstore; a supervisor should see the failure")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not exit after losing xenstore")
	}
}
