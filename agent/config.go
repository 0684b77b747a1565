package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// config is /etc/tvd/agent.json. Its values are secrets: they never go into an error text or
// a log line, only the file's path and the field's name do.
type config struct {
	ownerAuth []byte // 32 bytes
	srkAuth   []byte // 32 bytes
}

func loadConfig(path string) (*config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %v", path, err)
	}
	var f struct {
		Version   int    `json:"version"`
		OwnerAuth string `json:"ownerAuth"`
		SRKAuth   string `json:"srkAuth"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		// json's syntax errors quote no input, only offsets; still, say only where.
		return nil, fmt.Errorf("config %s is not valid JSON (%s)", path, jsonErrorWhere(err))
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("config %s: version %d, this agent reads version 1", path, f.Version)
	}
	c := &config{}
	for _, fld := range []struct {
		name string
		val  string
		dst  *[]byte
	}{{"ownerAuth", f.OwnerAuth, &c.ownerAuth}, {"srkAuth", f.SRKAuth, &c.srkAuth}} {
		b, err := hex.DecodeString(fld.val)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("config %s: %s must be 64 hex digits (32 bytes)", path, fld.name)
		}
		*fld.dst = b
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		logf("warning: config %s has mode %o; it holds the TPM's auth values and should be 0600", path, fi.Mode().Perm())
	}
	return c, nil
}

func jsonErrorWhere(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q has the wrong type", e.Field)
	default:
		return "unreadable"
	}
}

// auth12 is TPM 1.2's 20-byte TPM_AUTHDATA: the first 20 bytes (PROTOCOL.md).
func auth12(b []byte) [20]byte {
	var d [20]byte
	copy(d[:], b[:20])
	return d
}
