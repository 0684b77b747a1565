package main

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Nodes of PROTOCOL.md, relative to the member's home /local/domain/<domid>.
const (
	nodeReport    = "data/tvd/report"
	nodeRequest   = "data/tvd/request"
	nodeChallenge = "data/tvd/challenge"
	nodeResponse  = "data/tvd/response"
	nodeQuoteReq  = "data/tvd/quote-request"
	nodeQuote     = "data/tvd/quote"

	tokRequest   = "tvd-request"
	tokChallenge = "tvd-challenge"
	tokQuote     = "tvd-quote"
)

// serve writes the boot report, then answers requests, challenges and quote requests until
// xenstore goes away. Each request token, challenge and quote request is answered once per run; a watch also fires at its
// registration, so one left in xenstore from before this start is answered too.
func serve(a *agent, xb *xenbus) error {
	if err := writeJSON(xb, nodeReport, a.report("boot")); err != nil {
		return err
	}
	logf("boot report written")
	if err := xb.Watch(nodeRequest, tokRequest); err != nil {
		return fmt.Errorf("watch %s: %v", nodeRequest, err)
	}
	if err := xb.Watch(nodeChallenge, tokChallenge); err != nil {
		return fmt.Errorf("watch %s: %v", nodeChallenge, err)
	}
	if err := xb.Watch(nodeQuoteReq, tokQuote); err != nil {
		return fmt.Errorf("watch %s: %v", nodeQuoteReq, err)
	}
	var lastRequest string
	lastJSON := map[string]string{}
	for {
		fired, err := xb.takeEvents()
		if err != nil {
			return err
		}
		if fired[tokRequest] {
			tok, err := xb.Read(nodeRequest)
			if err != nil && !errors.Is(err, errNoEnt) {
				return fmt.Errorf("read %s: %v", nodeRequest, err)
			}
			if tok != "" && tok != lastRequest {
				lastRequest = tok
				r := a.report(tok)
				if r.Error != "" {
					logf("report for request %q: %s", tok, r.Error)
				}
				if err := writeJSON(xb, nodeReport, r); err != nil {
					return err
				}
			}
		}
		if fired[tokChallenge] {
			err := answerJSON(xb, lastJSON, nodeChallenge, nodeResponse, "challenge", func(raw []byte) (string, interface{}) {
				var ch Challenge
				if err := json.Unmarshal(raw, &ch); err != nil {
					return ch.ID, Response{Version: 1, ID: ch.ID, Error: "challenge is not valid JSON: " + jsonErrorWhere(err)}
				}
				r := a.activate(&ch)
				return ch.ID, r
			})
			if err != nil {
				return err
			}
		}
		if fired[tokQuote] {
			err := answerJSON(xb, lastJSON, nodeQuoteReq, nodeQuote, "quote request", func(raw []byte) (string, interface{}) {
				var req QuoteRequest
				if err := json.Unmarshal(raw, &req); err != nil {
					return req.ID, Quote{Version: 1, ID: req.ID, Error: "quote request is not valid JSON: " + jsonErrorWhere(err)}
				}
				return req.ID, a.quote(&req)
			})
			if err != nil {
				return err
			}
		}
	}
}

// answerJSON reads a JSON document dom0 wrote to in, answers it once (by content: the same
// document is not answered twice in a run) and writes the answer to out.
func answerJSON(xb *xenbus, last map[string]string, in, out, what string,
	answer func(raw []byte) (id string, reply interface{})) error {
	raw, err := xb.Read(in)
	if err != nil && !errors.Is(err, errNoEnt) {
		return fmt.Errorf("read %s: %v", in, err)
	}
	if raw == "" || raw == last[in] {
		return nil
	}
	last[in] = raw
	id, reply := answer([]byte(raw))
	if msg := replyError(reply); msg != "" {
		logf("%s %q: %s", what, id, msg)
	} else {
		logf("%s %q answered", what, id)
	}
	return writeJSON(xb, out, reply)
}

func replyError(reply interface{}) string {
	switch r := reply.(type) {
	case Response:
		return r.Error
	case Quote:
		return r.Error
	}
	return ""
}

func writeJSON(xb *xenbus, node string, v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := xb.Write(node, string(b)); err != nil {
		return fmt.Errorf("write %s: %v", node, err)
	}
	return nil
}
