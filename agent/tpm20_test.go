package main

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	legacy "github.com/google/go-tpm/legacy/tpm2"
	"github.com/google/go-tpm/legacy/tpm2/credactivation"
	"github.com/google/go-tpm/tpm2"
)

func public20(t *testing.T, what string, b []byte) *tpm2.TPMTPublic {
	t.Helper()
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		t.Fatalf("%s is not a TPMT_PUBLIC: %v", what, err)
	}
	return pub
}

// challenge20 is what dom0 sends for TPM2_ActivateCredential: MakeCredential(EK, name, secret)
// done in software with go-tpm's server-side helper. Generate returns sized TPM2Bs;
// PROTOCOL.md carries their contents.
func challenge20(t *testing.T, ekPub, boundPub, secret []byte) Challenge {
	t.Helper()
	ek := public20(t, "ek", ekPub)
	rsaParms, err := ek.Parameters.RSADetail()
	if err != nil {
		t.Fatal(err)
	}
	rsaUnique, err := ek.Unique.RSA()
	if err != nil {
		t.Fatal(err)
	}
	ekKey, err := tpm2.RSAPub(rsaParms, rsaUnique)
	if err != nil {
		t.Fatal(err)
	}
	// A key's name: its nameAlg, then that hash of its TPMT_PUBLIC.
	digest := sha256.Sum256(boundPub)
	name := &legacy.HashValue{Alg: legacy.AlgSHA256, Value: digest[:]}
	blob, encSecret, err := credactivation.Generate(name, ekKey, 16, secret)
	if err != nil {
		t.Fatal(err)
	}
	return Challenge{ID: "c20", TPM: "2.0", CredentialBlob: blob[2:], EncryptedSecret: encSecret[2:]}
}

func TestTPM20(t *testing.T) {
	s := newSwtpm(t, true)
	cfg := writeConfig(t, s.dir, "agent.json")
	state := filepath.Join(s.dir, "agent-state")
	var logs bytes.Buffer
	logOut = &logs
	t.Cleanup(func() { logOut = os.Stderr })

	code, first := reportCLI(t, s, cfg, state)
	if code != 0 || first.Error != "" || first.TPM != "2.0" {
		t.Fatalf("first report: exit %d, %+v", code, first)
	}
	ek, srk, ak := public20(t, "ek", first.EK), public20(t, "srk", first.SRK), public20(t, "ak", first.AK)
	if ek.AuthPolicy.Buffer == nil || !ek.ObjectAttributes.AdminWithPolicy || !ek.ObjectAttributes.Decrypt {
		t.Fatal("ek is not from the TCG default EK template")
	}
	if !srk.ObjectAttributes.Restricted || !srk.ObjectAttributes.Decrypt {
		t.Fatal("srk is not a storage key")
	}
	akRSA, err := ak.Parameters.RSADetail()
	if err != nil {
		t.Fatal(err)
	}
	akScheme, err := akRSA.Scheme.Details.RSASSA()
	if err != nil || !ak.ObjectAttributes.Restricted || !ak.ObjectAttributes.SignEncrypt || akRSA.KeyBits != 2048 ||
		akScheme.HashAlg != tpm2.TPMAlgSHA256 {
		t.Fatalf("ak is not a restricted RSA 2048 RSASSA-SHA256 signing key (%v)", err)
	}

	t.Run("report is stable across runs", func(t *testing.T) {
		code, again := reportCLI(t, s, cfg, state)
		if code != 0 || !bytes.Equal(again.EK, first.EK) || !bytes.Equal(again.SRK, first.SRK) || !bytes.Equal(again.AK, first.AK) {
			t.Fatalf("second report differs or failed: exit %d, error %q", code, again.Error)
		}
	})

	t.Run("activation returns the secret", func(t *testing.T) {
		secret := []byte("tvd credential 2.0")
		code, r := activateCLI(t, s, cfg, state, challenge20(t, first.EK, first.AK, secret))
		if code != 0 || r.Error != "" || !bytes.Equal(r.Secret, secret) || r.ID != "c20" {
			t.Fatalf("activate: exit %d, %+v", code, r)
		}
	})

	t.Run("a challenge bound to another key's name fails", func(t *testing.T) {
		code, r := activateCLI(t, s, cfg, state, challenge20(t, first.EK, first.SRK, []byte("not for this AK")))
		if code == 0 || r.Error == "" || r.Secret != nil {
			t.Fatalf("activation for another key's name succeeded: %+v", r)
		}
		t.Logf("refused as expected: %s", r.Error)
	})

	t.Run("a challenge for a TPM 1.2 is refused", func(t *testing.T) {
		code, r := activateCLI(t, s, cfg, state, Challenge{ID: "x", TPM: "1.2", Asym: []byte{1}, Sym: []byte{1}})
		if code == 0 || !strings.Contains(r.Error, "this member's TPM is 2.0") {
			t.Fatalf("%+v", r)
		}
	})

	t.Run("a TPM owned with another auth is an error", func(t *testing.T) {
		other := writeConfig(t, s.dir, "other.json")
		code, r := reportCLI(t, s, other, state)
		if code == 0 || !strings.Contains(r.Error, "another auth") || r.EK != nil {
			t.Fatalf("report under another owner auth: exit %d, %+v", code, r)
		}
		code, again := reportCLI(t, s, cfg, state)
		if code != 0 || !bytes.Equal(again.AK, first.AK) {
			t.Fatalf("the owner's report after a foreign one: exit %d, %+v", code, again)
		}
	})

	t.Run("a wiped TPM is taken again and reports a new EK", func(t *testing.T) {
		s.wipe(t)
		code, fresh := reportCLI(t, s, cfg, state)
		if code != 0 || fresh.Error != "" {
			t.Fatalf("report after wipe: exit %d, %+v", code, fresh)
		}
		if bytes.Equal(fresh.EK, first.EK) || bytes.Equal(fresh.SRK, first.SRK) || bytes.Equal(fresh.AK, first.AK) {
			t.Fatal("the wiped TPM reports an old key")
		}
		secret := []byte("after the wipe")
		code, r := activateCLI(t, s, cfg, state, challenge20(t, fresh.EK, fresh.AK, secret))
		if code != 0 || !bytes.Equal(r.Secret, secret) {
			t.Fatalf("activate after wipe: exit %d, %+v", code, r)
		}
	})

	assertNoSecret(t, cfg, logs.Bytes())
}
