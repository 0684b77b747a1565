package main

import (
	"errors"
	"fmt"
	"sort"
)

// QuoteRequest and Quote are the quote exchange of PROTOCOL.md: dom0 asks for the member's PCRs
// signed by the AK it certified, over a nonce of its own so that an old quote cannot pass as
// a new one.
type QuoteRequest struct {
	ID    string `json:"id"`
	TPM   string `json:"tpm"`
	Nonce []byte `json:"nonce"`
	PCRs  []int  `json:"pcrs"`
	Bank  string `json:"bank,omitempty"`
}

type Quote struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	TPM     string `json:"tpm,omitempty"`
	// Nonce echoes the request's: a quote for another nonce is told apart from a forged one.
	Nonce []byte `json:"nonce,omitempty"`
	Bank  string `json:"bank,omitempty"`
	// TPM 1.2: the TPM_PCR_COMPOSITE TPM_Quote returned; the signature is over TPM_QUOTE_INFO.
	PCRComposite []byte `json:"pcrComposite,omitempty"`
	// TPM 2.0: the TPMS_ATTEST (TPM2B_ATTEST contents) and the TPMT_SIGNATURE over it, and the
	// PCR values (lowercase hex, by PCR index) TPM2_PCR_Read gave around the quote.
	Attest    []byte            `json:"attest,omitempty"`
	Signature []byte            `json:"signature,omitempty"`
	PCRs      map[string]string `json:"pcrs,omitempty"`
	Error     string            `json:"error,omitempty"`
}

// Nonce bounds: at least 16 bytes so that dom0's nonces never repeat by chance; at most 32 so
// that it fits TPM2B_DATA on any TPM 2.0 (sizeof(TPMT_HA) with SHA-256 is 34).
const (
	minNonce = 16
	maxNonce = 32
	// PCRs a quote may name: the 24 of a TPM 1.2 (vtpm-stubdom) and of a PC Client TPM 2.0.
	pcrCount = 24
)

// checkQuoteRequest refuses a request the TPM would refuse less clearly, and returns its PCRs
// in ascending order (the order of the values in both TPMs' answers) and its bank.
func checkQuoteRequest(req *QuoteRequest, version string) ([]int, string, error) {
	if req.ID == "" {
		return nil, "", errors.New("quote request has no id")
	}
	if req.TPM != version {
		return nil, "", fmt.Errorf("quote request is for TPM %q, this member's TPM is %s", req.TPM, version)
	}
	if len(req.Nonce) < minNonce || len(req.Nonce) > maxNonce {
		return nil, "", fmt.Errorf("quote request's nonce is %d bytes, must be %d to %d", len(req.Nonce), minNonce, maxNonce)
	}
	if len(req.PCRs) == 0 {
		return nil, "", errors.New("quote request names no PCR (pcrs: e.g. [4, 5])")
	}
	pcrs := append([]int{}, req.PCRs...)
	sort.Ints(pcrs)
	for i, p := range pcrs {
		if p < 0 || p >= pcrCount {
			return nil, "", fmt.Errorf("quote request names PCR %d; PCRs are 0 to %d", p, pcrCount-1)
		}
		if i > 0 && pcrs[i-1] == p {
			return nil, "", fmt.Errorf("quote request names PCR %d twice", p)
		}
	}
	bank := req.Bank
	switch {
	case version == v12 && (bank == "" || bank == "sha1"):
		bank = "sha1"
	case version == v12:
		return nil, "", fmt.Errorf("quote request asks for bank %q; a TPM 1.2 has only sha1", bank)
	case bank != "sha1" && bank != "sha256":
		return nil, "", fmt.Errorf("quote request's bank is %q; a TPM 2.0 quote needs bank sha1 or sha256", bank)
	}
	return pcrs, bank, nil
}

// pcrSelect is the PCR bitmap both TPM versions use: PCR n is bit n%8 of byte n/8, three bytes
// for 24 PCRs (TPM 1.2 TPM_PCR_SELECTION.pcrSelect, TPM 2.0 TPMS_PCR_SELECTION.pcrSelect).
func pcrSelect(pcrs []int) []byte {
	mask := make([]byte, pcrCount/8)
	for _, p := range pcrs {
		mask[p/8] |= 1 << (p % 8)
	}
	return mask
}

func (a *agent) quote(req *QuoteRequest) Quote {
	q := Quote{Version: 1, ID: req.ID}
	_, err := a.withTPM(func(version string, d tpmDriver) error {
		q.TPM = version
		pcrs, bank, err := checkQuoteRequest(req, version)
		if err != nil {
			return err
		}
		// Initialise first, as for a challenge: the AK must be the one the report shows, and a
		// wiped TPM is taken again (its new AK then fails dom0's check, as it should).
		if _, err := d.init(); err != nil {
			return err
		}
		if err := d.quote(req.Nonce, pcrs, bank, &q); err != nil {
			return err
		}
		q.Nonce, q.Bank = req.Nonce, bank
		return nil
	})
	if err != nil {
		q = Quote{Version: 1, ID: req.ID, TPM: q.TPM, Error: err.Error()}
	}
	return q
}
