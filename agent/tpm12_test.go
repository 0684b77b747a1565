package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm"
)

// challenge12 is what a privacy CA (here: dom0) sends for TPM_ActivateIdentity: asym is the
// TPM_ASYM_CA_CONTENTS {session key, SHA-1 of the AIK's TPM_PUBKEY} under the EK
// (RSAES-OAEP SHA-1, label "TCPA"); sym is the TPM_SYM_CA_ATTESTATION carrying the secret
// under the session key (AES-128-CBC, PKCS#5 padding, IV first).
func challenge12(t *testing.T, ekPub, boundPub, secret []byte) Challenge {
	t.Helper()
	return challenge12With(t, ekPub, boundPub, secret, esSymCBCPKCS5)
}

// TPM_ES_SYM_CTR and TPM_ES_SYM_CBC_PKCS5PAD (go-tpm's names).
const esSymCTR, esSymCBCPKCS5 = 4, 0xff

func challenge12With(t *testing.T, ekPub, boundPub, secret []byte, scheme uint16) Challenge {
	t.Helper()
	ek, err := tpm.UnmarshalPubRSAPublicKey(ekPub)
	if err != nil {
		t.Fatalf("EK in the report is not a TPM_PUBKEY: %v", err)
	}
	const algAES128, ssNone = 6, 1
	sessionKey := make([]byte, 16)
	rand.Read(sessionKey)
	digest := sha1.Sum(boundPub)

	var asymIn bytes.Buffer
	binary.Write(&asymIn, binary.BigEndian, uint32(algAES128)) // TPM_SYMMETRIC_KEY.algId
	binary.Write(&asymIn, binary.BigEndian, scheme)
	binary.Write(&asymIn, binary.BigEndian, uint16(len(sessionKey)))
	asymIn.Write(sessionKey)
	asymIn.Write(digest[:]) // idDigest
	asym, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, ek, asymIn.Bytes(), []byte("TCPA"))
	if err != nil {
		t.Fatal(err)
	}

	iv := make([]byte, aes.BlockSize)
	rand.Read(iv)
	block, _ := aes.NewCipher(sessionKey)
	var enc []byte
	if scheme == esSymCTR {
		enc = make([]byte, len(secret))
		cipher.NewCTR(block, iv).XORKeyStream(enc, secret)
	} else {
		pad := aes.BlockSize - len(secret)%aes.BlockSize
		plain := append(append([]byte{}, secret...), bytes.Repeat([]byte{byte(pad)}, pad)...)
		enc = make([]byte, len(plain))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(enc, plain)
	}
	credential := append(iv, enc...)

	var sym bytes.Buffer
	binary.Write(&sym, binary.BigEndian, uint32(len(credential))) // credSize
	binary.Write(&sym, binary.BigEndian, uint32(algAES128))       // TPM_KEY_PARMS.algorithmID
	binary.Write(&sym, binary.BigEndian, scheme)
	binary.Write(&sym, binary.BigEndian, uint16(ssNone))
	binary.Write(&sym, binary.BigEndian, uint32(0)) // parmSize
	sym.Write(credential)
	return Challenge{ID: "c12", TPM: "1.2", Asym: asym, Sym: sym.Bytes()}
}

func TestTPM12(t *testing.T) {
	s := newSwtpm(t, false)
	cfg := writeConfig(t, s.dir, "agent.json")
	state := filepath.Join(s.dir, "agent-state")
	var logs bytes.Buffer
	logOut = &logs
	t.Cleanup(func() { logOut = os.Stderr })

	code, first := reportCLI(t, s, cfg, state)
	if code != 0 || first.Error != "" || first.TPM != "1.2" {
		t.Fatalf("first report: exit %d, %+v", code, first)
	}
	for name, k := range map[string][]byte{"ek": first.EK, "srk": first.SRK, "ak": first.AK} {
		if _, err := tpm.UnmarshalPubRSAPublicKey(k); err != nil {
			t.Fatalf("%s is not an RSA TPM_PUBKEY: %v", name, err)
		}
	}

	t.Run("report is stable across runs", func(t *testing.T) {
		code, again := reportCLI(t, s, cfg, state)
		if code != 0 || !bytes.Equal(again.EK, first.EK) || !bytes.Equal(again.SRK, first.SRK) || !bytes.Equal(again.AK, first.AK) {
			t.Fatalf("second report differs or failed: exit %d, error %q", code, again.Error)
		}
	})

	t.Run("activation returns the secret", func(t *testing.T) {
		secret := []byte("tvd credential 1.2")
		code, r := activateCLI(t, s, cfg, state, challenge12(t, first.EK, first.AK, secret))
		if code != 0 || r.Error != "" || !bytes.Equal(r.Secret, secret) || r.ID != "c12" {
			t.Fatalf("activate: exit %d, %+v", code, r)
		}
	})

	t.Run("activation with an AES-CTR credential", func(t *testing.T) {
		secret := []byte("ctr credential")
		code, r := activateCLI(t, s, cfg, state, challenge12With(t, first.EK, first.AK, secret, esSymCTR))
		if code != 0 || !bytes.Equal(r.Secret, secret) {
			t.Fatalf("activate: exit %d, %+v", code, r)
		}
	})

	t.Run("a challenge bound to another key fails", func(t *testing.T) {
		code, r := activateCLI(t, s, cfg, state, challenge12(t, first.EK, first.SRK, []byte("not for this AIK")))
		if code == 0 || r.Error == "" || r.Secret != nil {
			t.Fatalf("activation with another key's digest succeeded: %+v", r)
		}
		t.Logf("refused as expected: %s", r.Error)
	})

	t.Run("a malformed sym blob is an error, not a crash", func(t *testing.T) {
		ch := challenge12(t, first.EK, first.AK, []byte("x"))
		// Cut the credential so it is no longer whole AES blocks (credSize kept consistent):
		// go-tpm's CBC decryption panics on that.
		ch.Sym = ch.Sym[:len(ch.Sym)-3]
		binary.BigEndian.PutUint32(ch.Sym, uint32(len(ch.Sym)-16))
		code, r := activateCLI(t, s, cfg, state, ch)
		if code == 0 || r.Error == "" {
			t.Fatalf("a malformed sym blob was accepted: %+v", r)
		}
		t.Logf("refused as expected: %s", r.Error)
	})

	t.Run("a TPM owned with another auth is an error", func(t *testing.T) {
		other := writeConfig(t, s.dir, "other.json")
		code, r := reportCLI(t, s, other, state)
		if code == 0 || !strings.Contains(r.Error, "another owner auth") || r.EK != nil {
			t.Fatalf("report under another owner auth: exit %d, %+v", code, r)
		}
		// The TPM still answers its owner afterwards.
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
		code, r := activateCLI(t, s, cfg, state, challenge12(t, fresh.EK, fresh.AK, secret))
		if code != 0 || !bytes.Equal(r.Secret, secret) {
			t.Fatalf("activate after wipe: exit %d, %+v", code, r)
		}
	})

	assertNoSecret(t, cfg, logs.Bytes())
}
