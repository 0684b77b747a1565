package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// tpm20 drives a TPM 2.0 through go-tpm's tpm2 package.
type tpm20 struct {
	t   transport.TPM
	cfg *config
}

// Persistent handles (TCG "Registry of Reserved TPM 2.0 Handles and Localities": 0x81000001
// is the conventional SRK, 0x8101xxxx the endorsement range where AKs customarily live).
const (
	srkHandle tpm2.TPMHandle = 0x81000001
	akHandle  tpm2.TPMHandle = 0x81010002
)

// akTemplate: restricted RSA 2048 signing key, RSASSA SHA-256 (PROTOCOL.md). Its userAuth is
// empty: the AK only signs TPM-generated quotes, and dom0 needs no secret to ask for one.
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgRSA,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		NoDA:                true,
		Restricted:          true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTRSAScheme{
			Scheme:  tpm2.TPMAlgRSASSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		KeyBits: 2048,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
}

func (d *tpm20) owner() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(d.cfg.ownerAuth)}
}

func isBadAuth(err error) bool {
	return errors.Is(err, tpm2.TPMRCBadAuth) || errors.Is(err, tpm2.TPMRCAuthFail)
}

// ownerAuthSet reads TPMA_PERMANENT.ownerAuthSet: FALSE on a new TPM and after TPM2_Clear.
func (d *tpm20) ownerAuthSet() (bool, error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTPermanent),
		PropertyCount: 1,
	}.Execute(d.t)
	if err != nil {
		return false, fmt.Errorf("TPM 2.0: read TPM_PT_PERMANENT: %v", err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil || len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != tpm2.TPMPTPermanent {
		return false, fmt.Errorf("TPM 2.0: TPM_PT_PERMANENT missing from the TPM's answer")
	}
	return props.TPMProperty[0].Value&1 != 0, nil // bit 0: ownerAuthSet
}

// readPublic returns the object at a persistent handle, or nil if there is none.
func (d *tpm20) readPublic(h tpm2.TPMHandle) (*tpm2.ReadPublicResponse, error) {
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(d.t)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("TPM 2.0: TPM2_ReadPublic(0x%08x): %v", uint32(h), err)
	}
	return rsp, nil
}

func (d *tpm20) evict(h tpm2.TPMHandle) error {
	rsp, err := d.readPublic(h)
	if err != nil || rsp == nil {
		return err
	}
	_, err = tpm2.EvictControl{
		Auth:             d.owner(),
		ObjectHandle:     tpm2.NamedHandle{Handle: h, Name: rsp.Name},
		PersistentHandle: h,
	}.Execute(d.t)
	if err != nil {
		return fmt.Errorf("TPM 2.0: remove the stale object at 0x%08x (TPM2_EvictControl): %v", uint32(h), err)
	}
	return nil
}

func (d *tpm20) persist(obj tpm2.TPMHandle, name tpm2.TPM2BName, at tpm2.TPMHandle) error {
	_, err := tpm2.EvictControl{
		Auth:             d.owner(),
		ObjectHandle:     tpm2.NamedHandle{Handle: obj, Name: name},
		PersistentHandle: at,
	}.Execute(d.t)
	if err != nil {
		return fmt.Errorf("TPM 2.0: persist at 0x%08x (TPM2_EvictControl): %v", uint32(at), err)
	}
	return nil
}

func (d *tpm20) flush(h tpm2.TPMHandle) {
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(d.t)
}

func (d *tpm20) init() (keys, error) {
	set, err := d.ownerAuthSet()
	if err != nil {
		return keys{}, err
	}
	if !set {
		// No owner (new, or cleared): take it. Objects at our handles now were not made under
		// our owner auth, so they go; ours are made fresh below.
		logf("TPM 2.0 has no owner auth: setting it and making a new SRK and AK")
		_, err := tpm2.HierarchyChangeAuth{
			AuthHandle: tpm2.TPMRHOwner,
			NewAuth:    tpm2.TPM2BAuth{Buffer: d.cfg.ownerAuth},
		}.Execute(d.t)
		if err != nil {
			return keys{}, fmt.Errorf("TPM 2.0: set the owner auth (TPM2_HierarchyChangeAuth): %v", err)
		}
		for _, h := range []tpm2.TPMHandle{akHandle, srkHandle} {
			if err := d.evict(h); err != nil {
				return keys{}, err
			}
		}
	} else {
		// Owned: ours only if it takes our owner auth. Changing the auth to the same value is
		// the cheapest command that checks it (owner auth is not under dictionary-attack
		// protection, so a wrong guess does not lock the TPM).
		_, err := tpm2.HierarchyChangeAuth{
			AuthHandle: d.owner(),
			NewAuth:    tpm2.TPM2BAuth{Buffer: d.cfg.ownerAuth},
		}.Execute(d.t)
		if isBadAuth(err) {
			return keys{}, errors.New("TPM 2.0's owner hierarchy has another auth than the config's ownerAuth " +
				"(TPM_RC_BAD_AUTH): clear the TPM (TPM2_Clear, or a new vTPM) or give the agent that owner's config")
		}
		if err != nil {
			return keys{}, fmt.Errorf("TPM 2.0: check the owner auth (TPM2_HierarchyChangeAuth): %v", err)
		}
	}

	var k keys
	srk, err := d.ensureSRK()
	if err != nil {
		return keys{}, err
	}
	k.srk = srk.OutPublic.Bytes()
	ak, err := d.ensureAK(srk)
	if err != nil {
		return keys{}, err
	}
	k.ak = ak.OutPublic.Bytes()
	ek, err := d.createEK()
	if err != nil {
		return keys{}, err
	}
	d.flush(ek.ObjectHandle)
	k.ek = ek.OutPublic.Bytes()
	return k, nil
}

func (d *tpm20) ensureSRK() (*tpm2.ReadPublicResponse, error) {
	rsp, err := d.readPublic(srkHandle)
	if err != nil {
		return nil, err
	}
	if rsp != nil {
		if err := expectKey(rsp, "SRK", srkHandle, true, false); err != nil {
			return nil, err
		}
		return rsp, nil
	}
	created, err := tpm2.CreatePrimary{
		PrimaryHandle: d.owner(),
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: d.cfg.srkAuth},
		}},
		InPublic: tpm2.New2B(tpm2.RSASRKTemplate),
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("TPM 2.0: create the SRK (TPM2_CreatePrimary, owner hierarchy): %v", err)
	}
	defer d.flush(created.ObjectHandle)
	if err := d.persist(created.ObjectHandle, created.Name, srkHandle); err != nil {
		return nil, err
	}
	return d.readPublic(srkHandle)
}

func (d *tpm20) ensureAK(srk *tpm2.ReadPublicResponse) (*tpm2.ReadPublicResponse, error) {
	rsp, err := d.readPublic(akHandle)
	if err != nil {
		return nil, err
	}
	if rsp != nil {
		if err := expectKey(rsp, "AK", akHandle, false, true); err != nil {
			return nil, err
		}
		return rsp, nil
	}
	parent := tpm2.AuthHandle{Handle: srkHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(d.cfg.srkAuth)}
	created, err := tpm2.Create{ParentHandle: parent, InPublic: tpm2.New2B(akTemplate)}.Execute(d.t)
	if isBadAuth(err) {
		return nil, errors.New("TPM 2.0: the SRK at 0x81000001 refuses the config's srkAuth (TPM_RC_BAD_AUTH): " +
			"clear the TPM or give the agent the config it was made with")
	}
	if err != nil {
		return nil, fmt.Errorf("TPM 2.0: create the AK under the SRK (TPM2_Create): %v", err)
	}
	loaded, err := tpm2.Load{ParentHandle: parent, InPrivate: created.OutPrivate, InPublic: created.OutPublic}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("TPM 2.0: load the new AK (TPM2_Load): %v", err)
	}
	defer d.flush(loaded.ObjectHandle)
	if err := d.persist(loaded.ObjectHandle, loaded.Name, akHandle); err != nil {
		return nil, err
	}
	return d.readPublic(akHandle)
}

// expectKey refuses a persistent object at our handle that is not the kind of key we put there.
func expectKey(rsp *tpm2.ReadPublicResponse, what string, h tpm2.TPMHandle, decrypt, sign bool) error {
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return fmt.Errorf("TPM 2.0: the %s at 0x%08x: unreadable public area: %v", what, uint32(h), err)
	}
	a := pub.ObjectAttributes
	if pub.Type != tpm2.TPMAlgRSA || !a.Restricted || a.Decrypt != decrypt || a.SignEncrypt != sign || !a.FixedTPM {
		return fmt.Errorf("TPM 2.0: the object at 0x%08x is not a restricted RSA %s key as the agent makes one; "+
			"remove it (TPM2_EvictControl) or clear the TPM", uint32(h), what)
	}
	return nil
}

// createEK makes the EK from the TCG default RSA 2048 template. It is not persisted: the
// template and the endorsement seed determine it, so it comes out the same each time, no NV
// slot or owner auth is spent on it, and the report always shows the key of the TPM's current
// seed (a persisted copy is one more thing that could disagree with it).
func (d *tpm20) createEK() (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tpm2.RSAEKTemplate),
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("TPM 2.0: create the EK (TPM2_CreatePrimary, endorsement hierarchy, TCG default RSA "+
			"2048 template; fails if the platform set an endorsement auth): %v", err)
	}
	return rsp, nil
}

// ekPolicy satisfies the TCG default EK's policy: PolicySecret(TPM_RH_ENDORSEMENT).
func ekPolicy(t transport.TPM, session tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
	_, err := tpm2.PolicySecret{
		AuthHandle:    tpm2.TPMRHEndorsement,
		PolicySession: session,
		NonceTPM:      nonceTPM,
	}.Execute(t)
	return err
}

func (d *tpm20) activate(ch *Challenge) ([]byte, error) {
	if len(ch.CredentialBlob) == 0 || len(ch.EncryptedSecret) == 0 {
		return nil, errors.New("TPM 2.0 challenge needs both credentialBlob and encryptedSecret")
	}
	ak, err := d.readPublic(akHandle)
	if err != nil {
		return nil, err
	}
	if ak == nil {
		return nil, errors.New("TPM 2.0: no AK at 0x81010002")
	}
	ek, err := d.createEK()
	if err != nil {
		return nil, err
	}
	defer d.flush(ek.ObjectHandle)
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: akHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle: tpm2.AuthHandle{
			Handle: ek.ObjectHandle,
			Name:   ek.Name,
			Auth:   tpm2.Policy(tpm2.TPMAlgSHA256, 16, ekPolicy),
		},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: ch.CredentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: ch.EncryptedSecret},
	}.Execute(d.t)
	if err != nil {
		return nil, fmt.Errorf("TPM 2.0: TPM2_ActivateCredential: %v (a challenge made for another AK's name or "+
			"another EK is refused)", err)
	}
	return rsp.CertInfo.Buffer, nil
}

var bankAlgs = map[string]tpm2.TPMAlgID{"sha1": tpm2.TPMAlgSHA1, "sha256": tpm2.TPMAlgSHA256}

// readPCRs reads the PCRs of a bank with TPM2_PCR_Read, which answers at most eight digests per
// call: it asks again for those not yet returned. A bank the TPM has not allocated returns none.
func (d *tpm20) readPCRs(bank string, pcrs []int) (map[int][]byte, error) {
	values := make(map[int][]byte, len(pcrs))
	for len(values) < len(pcrs) {
		var todo []int
		for _, p := range pcrs {
			if _, ok := values[p]; !ok {
				todo = append(todo, p)
			}
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
			{Hash: bankAlgs[bank], PCRSelect: pcrSelect(todo)},
		}}}.Execute(d.t)
		if err != nil {
			return nil, fmt.Errorf("TPM 2.0: TPM2_PCR_Read(%s): %v", bank, err)
		}
		var got []int
		for _, sel := range rsp.PCRSelectionOut.PCRSelections {
			for i, b := range sel.PCRSelect {
				for bit := 0; bit < 8; bit++ {
					if b&(1<<bit) != 0 {
						got = append(got, i*8+bit)
					}
				}
			}
		}
		if len(got) == 0 || len(got) != len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("TPM 2.0: TPM2_PCR_Read returned no %s values for PCRs %v: the TPM has no %s bank "+
				"allocated (TPM2_PCR_Allocate, or ask for another bank)", bank, todo, bank)
		}
		sort.Ints(got)
		for i, p := range got {
			values[p] = rsp.PCRValues.Digests[i].Buffer
		}
	}
	return values, nil
}

// quote runs TPM2_Quote with the AK (its own scheme, RSASSA-SHA256), qualifyingData = the nonce.
// The PCR values come from TPM2_PCR_Read, which is not signed: dom0 checks them against the
// quote's pcrDigest. They are read before and after the quote, and the quote is taken again
// (up to three times) if something extended a PCR in between, so a busy TPM does not make
// the agent send values that disagree with the digest.
func (d *tpm20) quote(nonce []byte, pcrs []int, bank string, q *Quote) error {
	ak, err := d.readPublic(akHandle)
	if err != nil {
		return err
	}
	if ak == nil {
		return errors.New("TPM 2.0: no AK at 0x81010002")
	}
	selection := tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: bankAlgs[bank], PCRSelect: pcrSelect(pcrs)},
	}}
	for attempt := 0; attempt < 3; attempt++ {
		before, err := d.readPCRs(bank, pcrs)
		if err != nil {
			return err
		}
		rsp, err := tpm2.Quote{
			SignHandle:     tpm2.AuthHandle{Handle: akHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: nonce},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
			PCRSelect:      selection,
		}.Execute(d.t)
		if err != nil {
			return fmt.Errorf("TPM 2.0: TPM2_Quote(AK): %v", err)
		}
		after, err := d.readPCRs(bank, pcrs)
		if err != nil {
			return err
		}
		changed := false
		for _, p := range pcrs {
			changed = changed || !bytes.Equal(before[p], after[p])
		}
		if changed {
			continue
		}
		q.Attest = rsp.Quoted.Bytes()
		q.Signature = tpm2.Marshal(rsp.Signature)
		q.PCRs = make(map[string]string, len(pcrs))
		for _, p := range pcrs {
			q.PCRs[strconv.Itoa(p)] = hex.EncodeToString(after[p])
		}
		return nil
	}
	return errors.New("TPM 2.0: the PCRs changed during each of three quotes; something keeps extending them")
}
