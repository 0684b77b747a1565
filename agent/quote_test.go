package main

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm"
	"github.com/google/go-tpm/tpm2"
)

func quoteCLI(t *testing.T, s *swtpmTPM, cfg, state string, req QuoteRequest) (int, Quote) {
	t.Helper()
	return jsonCLI[Quote](t, "quote", s, cfg, state, req)
}

// extend extends a PCR of the TPM directly, as pv-grub does before the agent runs: TPM 1.2
// TPM_Extend (SHA-1 digest), TPM 2.0 TPM2_PCR_Extend into the sha1 and sha256 banks.
func extend(t *testing.T, s *swtpmTPM, pcr int, event []byte) {
	t.Helper()
	c, err := openTPM(s.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	version := v12
	if s.tpm2 {
		version = v20
	}
	if err := startupIfNeeded(c, version); err != nil {
		t.Fatal(err)
	}
	d1, d256 := sha1.Sum(event), sha256.Sum256(event)
	if !s.tpm2 {
		if _, err := tpm.PcrExtend(c, uint32(pcr), d1); err != nil {
			t.Fatalf("TPM_Extend(%d): %v", pcr, err)
		}
		return
	}
	_, err = tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{
			{HashAlg: tpm2.TPMAlgSHA1, Digest: d1[:]},
			{HashAlg: tpm2.TPMAlgSHA256, Digest: d256[:]},
		}},
	}.Execute(c)
	if err != nil {
		t.Fatalf("TPM2_PCR_Extend(%d): %v", pcr, err)
	}
}

// replay is the value a PCR holds after extending these events from zero in one bank.
func replay(bank string, events ...[]byte) []byte {
	newHash := map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New}[bank]
	sum := func(parts ...[]byte) []byte {
		h := newHash()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	pcr := make([]byte, newHash().Size())
	for _, e := range events {
		pcr = sum(pcr, sum(e))
	}
	return pcr
}

var nonceA = bytes.Repeat([]byte{0xA5}, 32)

// measuredMember is a TPM after pv-grub's three extends (events "kernel", "cmdline", "initrd"),
// taken by the agent: its report.
func measuredMember(t *testing.T, tpm2 bool) (s *swtpmTPM, cfg, state string, rep Report) {
	t.Helper()
	s = newSwtpm(t, tpm2)
	cfg = writeConfig(t, s.dir, "agent.json")
	state = filepath.Join(s.dir, "agent-state")
	extend(t, s, 4, []byte("kernel"))
	extend(t, s, 5, []byte("cmdline"))
	extend(t, s, 5, []byte("initrd"))
	code, rep := reportCLI(t, s, cfg, state)
	if code != 0 {
		t.Fatalf("report: %+v", rep)
	}
	return s, cfg, state, rep
}

type refusedQuote struct {
	req  QuoteRequest
	want string
}

// expectRefused sends each request and expects an error that says what is wrong, and no quote.
func expectRefused(t *testing.T, s *swtpmTPM, cfg, state string, cases []refusedQuote) {
	t.Helper()
	for _, c := range cases {
		code, q := quoteCLI(t, s, cfg, state, c.req)
		if code == 0 || !strings.Contains(q.Error, c.want) || q.Signature != nil || q.Attest != nil || q.PCRComposite != nil {
			t.Errorf("%+v: exit %d, error %q, want it to say %q", c.req, code, q.Error, c.want)
		}
	}
}

func TestQuoteTPM12(t *testing.T) {
	s, cfg, state, rep := measuredMember(t, false)
	aik, err := tpm.UnmarshalPubRSAPublicKey(rep.AK)
	if err != nil {
		t.Fatal(err)
	}

	code, q := quoteCLI(t, s, cfg, state, QuoteRequest{ID: "q1", TPM: "1.2", Nonce: nonceA, PCRs: []int{5, 4}})
	if code != 0 || q.Error != "" || q.ID != "q1" || q.TPM != "1.2" || q.Bank != "sha1" || !bytes.Equal(q.Nonce, nonceA) {
		t.Fatalf("quote: exit %d, %+v", code, q)
	}
	// TPM_PCR_COMPOSITE: sizeOfSelect 3, PCRs 4 and 5 (bits 4, 5 of byte 0), 40 bytes of values.
	want := append([]byte{0, 3, 0x30, 0, 0, 0, 0, 0, 40}, replay("sha1", []byte("kernel"))...)
	want = append(want, replay("sha1", []byte("cmdline"), []byte("initrd"))...)
	if !bytes.Equal(q.PCRComposite, want) {
		t.Fatalf("composite\n got %x\nwant %x", q.PCRComposite, want)
	}
	// TPM_QUOTE_INFO: TPM_STRUCT_VER 1.1.0.0, "QUOT", SHA-1(composite), externalData = SHA-1(nonce).
	compositeHash, externalData := sha1.Sum(q.PCRComposite), sha1.Sum(nonceA)
	info := append([]byte{1, 1, 0, 0, 'Q', 'U', 'O', 'T'}, compositeHash[:]...)
	info = append(info, externalData[:]...)
	digest := sha1.Sum(info)
	if err := rsa.VerifyPKCS1v15(aik, crypto.SHA1, digest[:], q.Signature); err != nil {
		t.Fatalf("the quote does not verify with the reported AIK: %v", err)
	}
	other := sha1.Sum(append(info[:len(info)-20], make([]byte, 20)...))
	if rsa.VerifyPKCS1v15(aik, crypto.SHA1, other[:], q.Signature) == nil {
		t.Fatal("the signature verifies for another nonce too")
	}

	t.Run("requests the agent refuses", func(t *testing.T) {
		expectRefused(t, s, cfg, state, []refusedQuote{
			{QuoteRequest{ID: "x", TPM: "1.2", Nonce: nonceA[:8], PCRs: []int{4}}, "nonce is 8 bytes"},
			{QuoteRequest{ID: "x", TPM: "1.2", Nonce: nonceA, PCRs: []int{4}, Bank: "sha256"}, "only sha1"},
			{QuoteRequest{ID: "x", TPM: "1.2", Nonce: nonceA, PCRs: []int{24}}, "PCR 24"},
			{QuoteRequest{ID: "x", TPM: "1.2", Nonce: nonceA, PCRs: []int{4, 4}}, "PCR 4 twice"},
			{QuoteRequest{ID: "x", TPM: "1.2", Nonce: nonceA}, "names no PCR"},
			{QuoteRequest{ID: "x", TPM: "2.0", Nonce: nonceA, PCRs: []int{4}}, "this member's TPM is 1.2"},
		})
	})
}

func TestQuoteTPM20(t *testing.T) {
	s, cfg, state, rep := measuredMember(t, true)
	akPub := public20(t, "ak", rep.AK)
	rsaParms, _ := akPub.Parameters.RSADetail()
	rsaUnique, _ := akPub.Unique.RSA()
	ak, err := tpm2.RSAPub(rsaParms, rsaUnique)
	if err != nil {
		t.Fatal(err)
	}

	for _, bank := range []string{"sha256", "sha1"} {
		t.Run(bank, func(t *testing.T) {
			code, q := quoteCLI(t, s, cfg, state, QuoteRequest{ID: "q-" + bank, TPM: "2.0", Nonce: nonceA, PCRs: []int{4, 5}, Bank: bank})
			if code != 0 || q.Error != "" || q.Bank != bank || !bytes.Equal(q.Nonce, nonceA) {
				t.Fatalf("quote: exit %d, %+v", code, q)
			}
			wantPCRs := map[string]string{
				"4": hex.EncodeToString(replay(bank, []byte("kernel"))),
				"5": hex.EncodeToString(replay(bank, []byte("cmdline"), []byte("initrd"))),
			}
			if q.PCRs["4"] != wantPCRs["4"] || q.PCRs["5"] != wantPCRs["5"] || len(q.PCRs) != 2 {
				t.Fatalf("pcrs %v, want %v", q.PCRs, wantPCRs)
			}
			sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](q.Signature)
			if err != nil {
				t.Fatalf("signature is not a TPMT_SIGNATURE: %v", err)
			}
			rsassa, err := sig.Signature.RSASSA()
			if err != nil || rsassa.Hash != tpm2.TPMAlgSHA256 {
				t.Fatalf("signature is not RSASSA-SHA256: %v", err)
			}
			digest := sha256.Sum256(q.Attest)
			if err := rsa.VerifyPKCS1v15(ak, crypto.SHA256, digest[:], rsassa.Sig.Buffer); err != nil {
				t.Fatalf("the quote does not verify with the reported AK: %v", err)
			}
			attest, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Attest)
			if err != nil {
				t.Fatalf("attest is not a TPMS_ATTEST: %v", err)
			}
			info, err := attest.Attested.Quote()
			if err != nil || attest.Magic != tpm2.TPMGeneratedValue || !bytes.Equal(attest.ExtraData.Buffer, nonceA) {
				t.Fatalf("attest: not a quote with the nonce (%v)", err)
			}
			sel := info.PCRSelect.PCRSelections
			if len(sel) != 1 || sel[0].Hash != bankAlgs[bank] || !bytes.Equal(sel[0].PCRSelect, []byte{0x30, 0, 0}) {
				t.Fatalf("quoted selection %+v", sel)
			}
			// pcrDigest: the signing scheme's hash (SHA-256) of the concatenated values, whatever the bank.
			v4, _ := hex.DecodeString(q.PCRs["4"])
			v5, _ := hex.DecodeString(q.PCRs["5"])
			pcrDigest := sha256.Sum256(append(v4, v5...))
			if !bytes.Equal(info.PCRDigest.Buffer, pcrDigest[:]) {
				t.Fatal("pcrDigest is not SHA-256 of the reported PCR values")
			}
		})
	}

	t.Run("requests the agent refuses", func(t *testing.T) {
		expectRefused(t, s, cfg, state, []refusedQuote{
			{QuoteRequest{ID: "x", TPM: "2.0", Nonce: nonceA, PCRs: []int{4}}, "needs bank sha1 or sha256"},
			{QuoteRequest{ID: "x", TPM: "2.0", Nonce: append(nonceA, 1), PCRs: []int{4}, Bank: "sha256"}, "nonce is 33 bytes"},
			{QuoteRequest{TPM: "2.0", Nonce: nonceA, PCRs: []int{4}, Bank: "sha256"}, "no id"},
		})
	})
}

// TestPCRSelect pins the bitmap both TPMs use: PCR n is bit n%8 of byte n/8.
func TestPCRSelect(t *testing.T) {
	got := pcrSelect([]int{0, 4, 5, 9, 23})
	if want := []byte{0x31, 0x02, 0x80}; !bytes.Equal(got, want) {
		t.Fatalf("pcrSelect = %x, want %x", got, want)
	}
}
