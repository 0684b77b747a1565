package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
)

// xenstore wire protocol (xen/include/public/io/xs_wire.h): a 16-byte header of four
// little-endian uint32 (type, req_id, tx_id, len), then len bytes of payload.
const (
	xsDirectory  = 1
	xsRead       = 2
	xsWatch      = 4
	xsUnwatch    = 5
	xsWrite      = 11
	xsRm         = 13
	xsWatchEvent = 15
	xsError      = 16

	xsPayloadMax = 4096 // XENSTORE_PAYLOAD_MAX
)

// errNoEnt is xenstore's ENOENT: the node does not exist.
var errNoEnt = errors.New("ENOENT")

type xsMsg struct {
	typ, reqID, txID uint32
	payload          []byte
}

// xenbus is a xenstore client on /dev/xen/xenbus or on a Unix socket speaking the same wire
// protocol. Replies are matched to requests by req_id; watch events arrive interleaved with
// replies and are coalesced by token, since the agent re-reads the node on each event anyway.
type xenbus struct {
	conn io.ReadWriteCloser

	wmu     sync.Mutex // one message per write, never interleaved
	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]chan xsMsg
	fired   map[string]bool // watch tokens fired since the last takeEvents
	notify  chan struct{}
	dead    error
	done    chan struct{}
}

func openXenbus(path string) (*xenbus, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("xenbus %s: %v (give --xenbus /dev/xen/xenbus or a xenstore Unix socket)", path, err)
	}
	var conn io.ReadWriteCloser
	if fi.Mode()&os.ModeSocket != 0 {
		conn, err = net.Dial("unix", path)
	} else {
		conn, err = os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open xenbus %s: %v", path, err)
	}
	return newXenbus(conn), nil
}

func newXenbus(conn io.ReadWriteCloser) *xenbus {
	x := &xenbus{
		conn:    conn,
		nextID:  1,
		pending: map[uint32]chan xsMsg{},
		fired:   map[string]bool{},
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go x.readLoop()
	return x
}

func (x *xenbus) Close() error { return x.conn.Close() }

func (x *xenbus) readLoop() {
	var err error
	for {
		var m xsMsg
		if m, err = readXsMsg(x.conn); err != nil {
			break
		}
		if m.typ == xsWatchEvent {
			parts := bytes.Split(m.payload, []byte{0})
			if len(parts) >= 2 {
				x.mu.Lock()
				x.fired[string(parts[1])] = true
				x.mu.Unlock()
				select {
				case x.notify <- struct{}{}:
				default:
				}
			}
			continue
		}
		x.mu.Lock()
		ch := x.pending[m.reqID]
		delete(x.pending, m.reqID)
		x.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	x.mu.Lock()
	x.dead = fmt.Errorf("xenstore connection lost: %v", err)
	for id, ch := range x.pending {
		close(ch)
		delete(x.pending, id)
	}
	x.mu.Unlock()
	close(x.done)
}

func readXsMsg(r io.Reader) (xsMsg, error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return xsMsg{}, err
	}
	m := xsMsg{
		typ:   binary.LittleEndian.Uint32(hdr[0:]),
		reqID: binary.LittleEndian.Uint32(hdr[4:]),
		txID:  binary.LittleEndian.Uint32(hdr[8:]),
	}
	n := binary.LittleEndian.Uint32(hdr[12:])
	if n > xsPayloadMax {
		return xsMsg{}, fmt.Errorf("xenstore message announces %d bytes, more than XENSTORE_PAYLOAD_MAX", n)
	}
	m.payload = make([]byte, n)
	if _, err := io.ReadFull(r, m.payload); err != nil {
		return xsMsg{}, err
	}
	return m, nil
}

func encodeXsMsg(m xsMsg) []byte {
	b := make([]byte, 16+len(m.payload))
	binary.LittleEndian.PutUint32(b[0:], m.typ)
	binary.LittleEndian.PutUint32(b[4:], m.reqID)
	binary.LittleEndian.PutUint32(b[8:], m.txID)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(m.payload)))
	copy(b[16:], m.payload)
	return b
}

// request sends one message outside any transaction and waits for its reply.
func (x *xenbus) request(typ uint32, payload []byte) ([]byte, error) {
	if len(payload) > xsPayloadMax {
		return nil, fmt.Errorf("xenstore request of %d bytes exceeds XENSTORE_PAYLOAD_MAX (%d)", len(payload), xsPayloadMax)
	}
	ch := make(chan xsMsg, 1)
	x.mu.Lock()
	if x.dead != nil {
		x.mu.Unlock()
		return nil, x.dead
	}
	id := x.nextID
	x.nextID++
	x.pending[id] = ch
	x.mu.Unlock()

	x.wmu.Lock()
	_, err := x.conn.Write(encodeXsMsg(xsMsg{typ: typ, reqID: id, payload: payload}))
	x.wmu.Unlock()
	if err != nil {
		x.mu.Lock()
		delete(x.pending, id)
		x.mu.Unlock()
		return nil, fmt.Errorf("write to xenstore: %v", err)
	}
	m, ok := <-ch
	if !ok {
		x.mu.Lock()
		defer x.mu.Unlock()
		return nil, x.dead
	}
	if m.typ == xsError {
		e := string(bytes.TrimRight(m.payload, "\x00"))
		if e == "ENOENT" {
			return nil, errNoEnt
		}
		return nil, fmt.Errorf("xenstore error %s", e)
	}
	if m.typ != typ {
		return nil, fmt.Errorf("xenstore answered request type %d with type %d", typ, m.typ)
	}
	return m.payload, nil
}

func cstr(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = append(append(b, p...), 0)
	}
	return b
}

func (x *xenbus) Read(path string) (string, error) {
	v, err := x.request(xsRead, cstr(path))
	if err != nil {
		return "", err
	}
	return string(v), nil
}

func (x *xenbus) Write(path, value string) error {
	_, err := x.request(xsWrite, append(cstr(path), value...))
	return err
}

func (x *xenbus) Rm(path string) error {
	_, err := x.request(xsRm, cstr(path))
	return err
}

func (x *xenbus) Directory(path string) ([]string, error) {
	v, err := x.request(xsDirectory, cstr(path))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range bytes.Split(v, []byte{0}) {
		if len(p) > 0 {
			out = append(out, string(p))
		}
	}
	return out, nil
}

// Watch registers a watch; xenstore fires it once right away, then on each change under path.
func (x *xenbus) Watch(path, token string) error {
	_, err := x.request(xsWatch, cstr(path, token))
	return err
}

func (x *xenbus) Unwatch(path, token string) error {
	_, err := x.request(xsUnwatch, cstr(path, token))
	return err
}

// takeEvents waits until at least one watch has fired (or the connection died) and returns
// the tokens that fired since the last call.
func (x *xenbus) takeEvents() (map[string]bool, error) {
	for {
		x.mu.Lock()
		if len(x.fired) > 0 {
			f := x.fired
			x.fired = map[string]bool{}
			x.mu.Unlock()
			return f, nil
		}
		dead := x.dead
		x.mu.Unlock()
		if dead != nil {
			return nil, dead
		}
		select {
		case <-x.notify:
		case <-x.done:
		}
	}
}
