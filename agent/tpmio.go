package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// tpmConn carries raw TPM commands to a character device or to swtpm's unixio socket.
//
// go-tpm's own socket transport (tpmutil.EmulatorReadWriteCloser) dials a new connection per
// command and takes whatever a single read returns as the whole response. We keep one
// connection and read exactly the size the response header announces, so a response that
// arrives in several segments is never cut short. The device path keeps the kernel's rule:
// one write per command, one read returns the whole response.
type tpmConn struct {
	dev  *os.File
	sock net.Conn
	resp []byte
}

// maxResponse bounds a response we accept; TPM responses are a few KiB at most.
const maxResponse = 1 << 16

// commandTimeout is generous: a TPM 1.2 emulator generating an RSA 2048 SRK or AIK in a
// slow stub domain can take tens of seconds.
const commandTimeout = 3 * time.Minute

func openTPM(path string) (*tpmConn, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("TPM %s: %v (give --tpm the TPM character device or swtpm's unixio socket)", path, err)
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0:
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open TPM device %s: %v (is another process holding it? /dev/tpmrm0 allows sharing)", path, err)
		}
		return &tpmConn{dev: f}, nil
	case fi.Mode()&os.ModeSocket != 0:
		c, err := net.Dial("unix", path)
		if err != nil {
			return nil, fmt.Errorf("connect to TPM socket %s: %v (is swtpm running with --server type=unixio,path=%s?)", path, err, path)
		}
		return &tpmConn{sock: c}, nil
	default:
		return nil, fmt.Errorf("TPM %s is neither a character device nor a Unix socket (mode %s)", path, fi.Mode())
	}
}

func (t *tpmConn) Close() error {
	if t.dev != nil {
		return t.dev.Close()
	}
	return t.sock.Close()
}

// Send runs one command and returns the whole response (transport.TPM for go-tpm's tpm2).
func (t *tpmConn) Send(cmd []byte) ([]byte, error) {
	if t.dev != nil {
		if _, err := t.dev.Write(cmd); err != nil {
			return nil, fmt.Errorf("write to TPM device: %v", err)
		}
		buf := make([]byte, maxResponse)
		n, err := t.dev.Read(buf)
		if err != nil {
			return nil, fmt.Errorf("read from TPM device: %v", err)
		}
		if n < 10 {
			return nil, fmt.Errorf("TPM device returned %d bytes, shorter than a response header", n)
		}
		return buf[:n], nil
	}
	_ = t.sock.SetDeadline(time.Now().Add(commandTimeout))
	if _, err := t.sock.Write(cmd); err != nil {
		return nil, fmt.Errorf("write to TPM socket: %v", err)
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(t.sock, hdr); err != nil {
		return nil, fmt.Errorf("read TPM response header from socket: %v (did the TPM close the connection?)", err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < 10 || size > maxResponse {
		return nil, fmt.Errorf("TPM response announces %d bytes, not a TPM response", size)
	}
	resp := make([]byte, size)
	copy(resp, hdr)
	if _, err := io.ReadFull(t.sock, resp[10:]); err != nil {
		return nil, fmt.Errorf("read TPM response body from socket: %v", err)
	}
	return resp, nil
}

// Write and Read make tpmConn the io.ReadWriter go-tpm's tpm (1.2) package expects: it writes a
// command, then reads the response with one Read.
func (t *tpmConn) Write(p []byte) (int, error) {
	if t.resp != nil {
		return 0, errors.New("TPM command written before the previous response was read")
	}
	resp, err := t.Send(p)
	if err != nil {
		return 0, err
	}
	t.resp = resp
	return len(p), nil
}

func (t *tpmConn) Read(p []byte) (int, error) {
	if t.resp == nil {
		return 0, errors.New("TPM response read before a command was written")
	}
	resp := t.resp
	t.resp = nil
	if len(resp) > len(p) {
		return 0, fmt.Errorf("TPM response of %d bytes does not fit the caller's %d-byte buffer", len(resp), len(p))
	}
	return copy(p, resp), nil
}

// TPM versions as the report spells them.
const (
	v12 = "1.2"
	v20 = "2.0"
)

// probeVersion asks in TPM 2.0's dialect (TPM2_GetCapability of TPM_PT_FAMILY_INDICATOR): a
// TPM 2.0 answers with tag TPM_ST_NO_SESSIONS (0x8001), even to refuse it, while a TPM 1.2
// answers any unknown tag with TPM_TAG_RSP_COMMAND (0x00C4) and TPM_BADTAG.
func probeVersion(t *tpmConn) (string, error) {
	cmd := []byte{
		0x80, 0x01, 0, 0, 0, 22, 0, 0, 0x01, 0x7A, // TPM_ST_NO_SESSIONS, size, TPM_CC_GetCapability
		0, 0, 0, 6, // TPM_CAP_TPM_PROPERTIES
		0, 0, 0x01, 0x00, // TPM_PT_FAMILY_INDICATOR
		0, 0, 0, 1, // propertyCount
	}
	resp, err := t.Send(cmd)
	if err != nil {
		return "", fmt.Errorf("probe the TPM's version: %v", err)
	}
	switch tag := binary.BigEndian.Uint16(resp[0:2]); tag {
	case 0x8001, 0x8002:
		return v20, nil
	case 0x00C4:
		return v12, nil
	default:
		return "", fmt.Errorf("probe the TPM's version: unknown response tag 0x%04x (use --tpm-version 1.2|2.0)", tag)
	}
}

// startupIfNeeded sends TPM_Startup(CLEAR) only when the TPM says it has not had one (a bare
// swtpm, or a TPM no firmware or kernel driver started); a started TPM is left alone.
func startupIfNeeded(t *tpmConn, version string) error {
	var probe, startup []byte
	var notStarted uint32
	if version == v20 {
		probe = []byte{0x80, 0x01, 0, 0, 0, 22, 0, 0, 0x01, 0x7A, 0, 0, 0, 6, 0, 0, 0x01, 0x00, 0, 0, 0, 1}
		startup = []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0} // TPM2_Startup(TPM_SU_CLEAR)
		notStarted = 0x100                                                // TPM_RC_INITIALIZE
	} else {
		// TPM_GetCapability(TPM_CAP_PROPERTY, TPM_CAP_PROP_MANUFACTURER)
		probe = []byte{0, 0xC1, 0, 0, 0, 22, 0, 0, 0, 0x65, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0x01, 0x03}
		startup = []byte{0, 0xC1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1} // TPM_Startup(TPM_ST_CLEAR)
		notStarted = 0x26                                           // TPM_INVALID_POSTINIT
	}
	resp, err := t.Send(probe)
	if err != nil {
		return err
	}
	if binary.BigEndian.Uint32(resp[6:10]) != notStarted {
		return nil
	}
	resp, err = t.Send(startup)
	if err != nil {
		return err
	}
	if rc := binary.BigEndian.Uint32(resp[6:10]); rc != 0 {
		return fmt.Errorf("TPM_Startup(CLEAR) returned 0x%x", rc)
	}
	return nil
}
