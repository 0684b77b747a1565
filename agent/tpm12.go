package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	"github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpmutil"
)

// tpm12 drives a TPM 1.2 (Xen's vtpm-stubdom, swtpm without --tpm2) through go-tpm's tpm package.
type tpm12 struct {
	rw       *tpmConn
	cfg      *config
	stateDir string
}

// TPM 1.2 return codes the agent tells apart (TPM Main Part 2, section 16).
const (
	tpm12AuthFail          = 0x01
	tpm12NoEndorsement     = 0x23
	tpm12DefendLockRunning = 0x803
	tpmCapPropOwner        = 0x111 // TPM_CAP_PROP_OWNER
)

// tpm12Code returns the TPM return code inside one of go-tpm's tpm errors. go-tpm keeps the type
// (tpm.tpmError, a uint32) unexported, so look at its kind.
func tpm12Code(err error) (uint32, bool) {
	v := reflect.ValueOf(err)
	if err == nil || v.Kind() != reflect.Uint32 || v.Type().PkgPath() != "github.com/google/go-tpm/tpm" {
		return 0, false
	}
	return uint32(v.Uint()), true
}

// aikState is the AIK's TPM_KEY blob (its private part wrapped by the SRK) and the SRK it
// belongs to: a blob made under an earlier owner's SRK cannot load under this one.
type aikState struct {
	SRKDigest []byte `json:"srkDigest"` // SHA-1 of the SRK's TPM_PUBKEY
	Blob      []byte `json:"blob"`      // TPM_KEY from TPM_MakeIdentity
}

func (d *tpm12) aikPath() string { return filepath.Join(d.stateDir, "aik12.json") }

// aikAuth is the AIK's usage secret. It is derived from srkAuth, so the agent keeps no secret
// of its own in the state directory and a new srkAuth means a new AIK.
func (d *tpm12) aikAuth() [20]byte {
	m := hmac.New(sha1.New, d.cfg.srkAuth)
	m.Write([]byte("tvd-agent TPM 1.2 AIK usage auth"))
	var a [20]byte
	copy(a[:], m.Sum(nil))
	return a
}

func (d *tpm12) init() (keys, error) {
	owner, srkAuth := auth12(d.cfg.ownerAuth), auth12(d.cfg.srkAuth)
	flags, err := tpm.GetPermanentFlags(d.rw)
	if err != nil {
		return keys{}, fmt.Errorf("TPM 1.2: read TPM_PERMANENT_FLAGS: %v", err)
	}
	if flags.Disable || flags.Deactivated {
		return keys{}, errors.New("TPM 1.2 is disabled or deactivated: the platform must enable and activate it " +
			"before the agent runs (TPM_PhysicalEnable, TPM_PhysicalSetDeactivated(FALSE); e.g. swtpm_bios)")
	}
	ownedCap, err := tpm.GetCapabilityRaw(d.rw, tpm.CapProperty, tpmCapPropOwner)
	if err != nil || len(ownedCap) != 1 {
		return keys{}, fmt.Errorf("TPM 1.2: read TPM_CAP_PROP_OWNER: %v", err)
	}
	var k keys
	if ownedCap[0] == 0 {
		// No owner: a new TPM, or one cleared since. Any AIK blob we kept belongs to the old SRK.
		if k.ek, err = tpm.ReadPubEK(d.rw); err != nil {
			if c, _ := tpm12Code(err); c == tpm12NoEndorsement {
				return keys{}, errors.New("TPM 1.2 has no endorsement key: the platform must create one before the agent " +
					"runs (TPM_CreateEndorsementKeyPair; e.g. swtpm_setup --createek)")
			}
			return keys{}, fmt.Errorf("TPM 1.2: TPM_ReadPubek: %v", err)
		}
		if !flags.Ownership {
			return keys{}, errors.New("TPM 1.2 has no owner and refuses one (TPM_PERMANENT_FLAGS.ownership is FALSE): " +
				"the platform must allow owner installation (TPM_SetOwnerInstall)")
		}
		if err := os.Remove(d.aikPath()); err != nil && !os.IsNotExist(err) {
			return keys{}, fmt.Errorf("remove the AIK of the TPM's previous owner, %s: %v", d.aikPath(), err)
		}
		logf("TPM 1.2 has no owner: taking ownership (a new SRK)")
		if err := tpm.TakeOwnership(d.rw, owner, srkAuth, k.ek); err != nil {
			return keys{}, fmt.Errorf("TPM 1.2: TPM_TakeOwnership: %v", err)
		}
	} else {
		// Owned: ours only if it takes our owner auth. TPM_ReadPubek is off once owned.
		if k.ek, err = tpm.OwnerReadPubEK(d.rw, owner); err != nil {
			switch c, _ := tpm12Code(err); c {
			case tpm12AuthFail:
				return keys{}, errors.New("TPM 1.2 is owned with another owner auth than the config's ownerAuth " +
					"(TPM_AUTHFAIL): clear the TPM (a new vTPM, or TPM_ForceClear) or give the agent that owner's config")
			case tpm12DefendLockRunning:
				return keys{}, errors.New("TPM 1.2 is in its dictionary-attack lockout (TPM_DEFEND_LOCK_RUNNING) after " +
					"failed authorisations: wait for it to expire, then retry")
			}
			return keys{}, fmt.Errorf("TPM 1.2: TPM_OwnerReadInternalPub(EK): %v", err)
		}
	}
	if k.srk, err = tpm.OwnerReadSRK(d.rw, owner); err != nil {
		return keys{}, fmt.Errorf("TPM 1.2: TPM_OwnerReadInternalPub(SRK): %v", err)
	}
	blob, err := d.aik(k.srk, owner, srkAuth)
	if err != nil {
		return keys{}, err
	}
	if k.ak, err = pubKeyOfKeyBlob(blob); err != nil {
		return keys{}, fmt.Errorf("TPM 1.2: the AIK blob in %s: %v", d.aikPath(), err)
	}
	return k, nil
}

// aik returns the AIK blob kept for this SRK, making one (TPM_MakeIdentity) if there is none.
func (d *tpm12) aik(srk []byte, owner, srkAuth [20]byte) ([]byte, error) {
	srkDigest := sha1.Sum(srk)
	if raw, err := os.ReadFile(d.aikPath()); err == nil {
		var st aikState
		if err := json.Unmarshal(raw, &st); err == nil && hmac.Equal(st.SRKDigest, srkDigest[:]) && len(st.Blob) > 0 {
			return st.Blob, nil
		}
		logf("the AIK in %s is unreadable or belongs to another SRK: making a new one", d.aikPath())
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read the AIK blob %s: %v", d.aikPath(), err)
	}
	aikAuth := d.aikAuth()
	// No privacy CA: the label and CA key are absent, so TPM_CHOSENID_HASH is zero. The
	// identity binding the TPM signs is not used; activation is what proves the AIK.
	blob, err := tpm.MakeIdentity(d.rw, srkAuth[:], owner[:], aikAuth[:], nil, nil)
	if err != nil {
		if c, _ := tpm12Code(err); c == tpm12AuthFail {
			return nil, errors.New("TPM 1.2: TPM_MakeIdentity refused the config's srkAuth (TPM_AUTHFAIL): the TPM's " +
				"SRK was made with another SRK auth; clear the TPM or give the agent the matching config")
		}
		return nil, fmt.Errorf("TPM 1.2: TPM_MakeIdentity: %v", err)
	}
	raw, err := json.Marshal(aikState{SRKDigest: srkDigest[:], Blob: blob})
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(d.aikPath(), raw, 0o600); err != nil {
		return nil, fmt.Errorf("keep the AIK blob: %v", err)
	}
	logf("TPM 1.2: made a new AIK, kept in %s", d.aikPath())
	return blob, nil
}

// pubKeyOfKeyBlob cuts a TPM_KEY into the TPM_PUBKEY the report carries: the key's
// TPM_KEY_PARMS followed by its TPM_STORE_PUBKEY (TPM Main Part 2, 10.2 and 10.5).
func pubKeyOfKeyBlob(blob []byte) ([]byte, error) {
	const head = 4 + 2 + 4 + 1 // ver, keyUsage, keyFlags, authDataUsage
	short := errors.New("TPM_KEY blob is truncated")
	if len(blob) < head+12 {
		return nil, short
	}
	parmsEnd := head + 12 + int(binary.BigEndian.Uint32(blob[head+8:]))
	if len(blob) < parmsEnd+4 {
		return nil, short
	}
	pubStart := parmsEnd + 4 + int(binary.BigEndian.Uint32(blob[parmsEnd:])) // skip PCRInfo
	if len(blob) < pubStart+4 {
		return nil, short
	}
	pubEnd := pubStart + 4 + int(binary.BigEndian.Uint32(blob[pubStart:]))
	if len(blob) < pubEnd {
		return nil, short
	}
	out := append([]byte{}, blob[head:parmsEnd]...)
	return append(out, blob[pubStart:pubEnd]...), nil
}

func (d *tpm12) activate(ch *Challenge) (secret []byte, err error) {
	if len(ch.Asym) == 0 || len(ch.Sym) == 0 {
		return nil, errors.New("TPM 1.2 challenge needs both asym and sym")
	}
	owner := auth12(d.cfg.ownerAuth)
	h, err := d.loadAIK()
	if err != nil {
		return nil, err
	}
	defer tpm.CloseKey(d.rw, h)
	// go-tpm decrypts the sym blob itself and panics on a malformed one (a CBC credential
	// that is not whole blocks, a bad padding length): that is a bad challenge, not a crash.
	defer func() {
		if r := recover(); r != nil {
			secret, err = nil, fmt.Errorf("TPM 1.2: the sym blob does not decrypt under the session key: %v", r)
		}
	}()
	aikAuth := d.aikAuth()
	secret, err = tpm.ActivateIdentity(d.rw, aikAuth[:], owner[:], h, ch.Asym, ch.Sym)
	if err != nil {
		return nil, fmt.Errorf("TPM 1.2: TPM_ActivateIdentity: %v (a challenge made for another AIK or EK is refused)", err)
	}
	return secret, nil
}

// loadAIK loads the AIK blob init kept (TPM_LoadKey2 under the SRK); the caller closes the handle.
func (d *tpm12) loadAIK() (tpmutil.Handle, error) {
	srkAuth := auth12(d.cfg.srkAuth)
	raw, err := os.ReadFile(d.aikPath())
	if err != nil {
		return 0, fmt.Errorf("read the AIK blob %s: %v", d.aikPath(), err)
	}
	var st aikState
	if err := json.Unmarshal(raw, &st); err != nil {
		return 0, fmt.Errorf("AIK state %s is not valid JSON", d.aikPath())
	}
	h, err := tpm.LoadKey2(d.rw, st.Blob, srkAuth[:])
	if err != nil {
		return 0, fmt.Errorf("TPM 1.2: TPM_LoadKey2(AIK): %v", err)
	}
	return h, nil
}

// quote runs TPM_Quote with the AIK. go-tpm sends externalData = SHA-1(nonce) (TPM_NONCE is 20
// bytes) and returns the composite's values; the TPM_PCR_COMPOSITE it signed is rebuilt here
// from the selection go-tpm sent (sizeOfSelect 3) and those values, byte for byte.
//
// TPM_Quote rather than TPM_Quote2: its answer carries the PCR values inside the signed
// composite, so values and signature come from one command, and go-tpm's Quote2 returns only
// the signature (the values would need a second, unsigned TPM_PCRRead). Quote2's extra,
// the locality at release, says nothing about a vTPM, which sees every command at locality 0.
func (d *tpm12) quote(nonce []byte, pcrs []int, bank string, q *Quote) error {
	h, err := d.loadAIK()
	if err != nil {
		return err
	}
	defer tpm.CloseKey(d.rw, h)
	aikAuth := d.aikAuth()
	sig, values, err := tpm.Quote(d.rw, h, nonce, pcrs, aikAuth[:])
	if err != nil {
		return fmt.Errorf("TPM 1.2: TPM_Quote(AIK): %v", err)
	}
	if len(values) != len(pcrs)*sha1.Size {
		return fmt.Errorf("TPM 1.2: TPM_Quote returned %d bytes of PCR values for %d PCRs", len(values), len(pcrs))
	}
	composite := binary.BigEndian.AppendUint16(nil, uint16(pcrCount/8))
	composite = append(composite, pcrSelect(pcrs)...)
	composite = binary.BigEndian.AppendUint32(composite, uint32(len(values)))
	q.PCRComposite = append(composite, values...)
	q.Signature = sig
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
