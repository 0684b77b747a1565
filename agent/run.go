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

	tokRequest   = "tvd-request"
	tokChallenge = "tvd-challenge"
)

// serve writes the boot report, then answers requests and challenges until xenstore goes away.
// Each request token and challenge id is answered once per run; a watch also fires at its
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
	var lastRequest, lastChallenge string
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
			raw, err := xb.Read(nodeChallenge)
			if err != nil && !errors.Is(err, errNoEnt) {
				return fmt.Errorf("read %s: %v", nodeChallenge, err)
			}
			if raw == "" || raw == lastChallenge {
				continue
			}
			lastChallenge = raw
			var ch Challenge
			var resp Response
			if err := json.Unmarshal([]byte(raw), &ch); err != nil {
				resp = Response{Version: 1, ID: ch.ID, Error: "challenge is not valid JSON: " + jsonErrorWhere(err)}
			} else {
				resp = a.activate(&ch)
			}
			if resp.Error != "" {
				logf("challenge %q: %s", ch.ID, resp.Error)
			} else {
				logf("challenge %q answered", ch.ID)
			}
			if err := writeJSON(xb, nodeResponse, resp); err != nil {
				return err
			}
		}
	}
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
