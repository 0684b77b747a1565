package main

import (
	"fmt"
	"os"
)

// Report, Challenge and Response are the JSON documents of PROTOCOL.md. []byte fields travel
// as standard base64, which is what encoding/json does with them.
type Report struct {
	Version int    `json:"version"`
	Request string `json:"request"`
	TPM     string `json:"tpm,omitempty"`
	EK      []byte `json:"ek,omitempty"`
	SRK     []byte `json:"srk,omitempty"`
	AK      []byte `json:"ak,omitempty"`
	Error   string `json:"error,omitempty"`
}

type Challenge struct {
	ID              string `json:"id"`
	TPM             string `json:"tpm"`
	CredentialBlob  []byte `json:"credentialBlob,omitempty"`
	EncryptedSecret []byte `json:"encryptedSecret,omitempty"`
	Asym            []byte `json:"asym,omitempty"`
	Sym             []byte `json:"sym,omitempty"`
}

type Response struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Secret  []byte `json:"secret,omitempty"`
	Error   string `json:"error,omitempty"`
}

type keys struct{ ek, srk, ak []byte }

// tpmDriver is one TPM version's half of the agent. init is idempotent (PROTOCOL.md).
type tpmDriver interface {
	init() (keys, error)
	activate(ch *Challenge) ([]byte, error)
	// quote signs the PCRs (ascending) of the bank with the AK over the nonce and fills the
	// version's fields of q (PROTOCOL.md, "Quote").
	quote(nonce []byte, pcrs []int, bank string, q *Quote) error
}

type agent struct {
	tpmPath    string
	tpmVersion string // "" probes
	configPath string
	stateDir   string
}

// withTPM opens the TPM for one operation and closes it after, so a /dev/tpm0 (one opener at
// a time) is free between requests.
func (a *agent) withTPM(fn func(version string, d tpmDriver) error) (string, error) {
	cfg, err := loadConfig(a.configPath)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(a.stateDir, 0o700); err != nil {
		return "", fmt.Errorf("create state directory %s: %v", a.stateDir, err)
	}
	t, err := openTPM(a.tpmPath)
	if err != nil {
		return "", err
	}
	defer t.Close()
	version := a.tpmVersion
	if version == "" {
		if version, err = probeVersion(t); err != nil {
			return "", err
		}
	}
	if err := startupIfNeeded(t, version); err != nil {
		return version, fmt.Errorf("start the TPM %s: %v", version, err)
	}
	var d tpmDriver
	if version == v12 {
		d = &tpm12{rw: t, cfg: cfg, stateDir: a.stateDir}
	} else {
		d = &tpm20{t: t, cfg: cfg}
	}
	return version, fn(version, d)
}

func (a *agent) report(request string) Report {
	r := Report{Version: 1, Request: request}
	version, err := a.withTPM(func(version string, d tpmDriver) error {
		k, err := d.init()
		if err != nil {
			return err
		}
		r.EK, r.SRK, r.AK = k.ek, k.srk, k.ak
		return nil
	})
	r.TPM = version
	if err != nil {
		r.EK, r.SRK, r.AK = nil, nil, nil
		r.Error = err.Error()
	}
	return r
}

func (a *agent) activate(ch *Challenge) Response {
	r := Response{Version: 1, ID: ch.ID}
	_, err := a.withTPM(func(version string, d tpmDriver) error {
		if ch.TPM != version {
			return fmt.Errorf("challenge is for TPM %q, this member's TPM is %s", ch.TPM, version)
		}
		// Initialise first: the AK the challenge names must exist, and a wiped TPM must not
		// answer with keys it no longer has.
		if _, err := d.init(); err != nil {
			return err
		}
		secret, err := d.activate(ch)
		if err != nil {
			return err
		}
		r.Secret = secret
		return nil
	})
	if err != nil {
		r.Error = err.Error()
	}
	return r
}
