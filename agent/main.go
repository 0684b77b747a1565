// tvd-agent runs inside a TVD member: it takes its TPM (1.2 or 2.0), reports the TPM's public
// keys to dom0 through xenstore, answers credential-activation challenges and quotes its PCRs
// with the AK. PROTOCOL.md is its contract with dom0.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

const usage = `usage:
  tvd-agent run      --tpm PATH --xenbus PATH --config FILE --state DIR [--tpm-version 1.2|2.0]
  tvd-agent report   --tpm PATH --config FILE --state DIR [--tpm-version 1.2|2.0]
  tvd-agent activate --tpm PATH --config FILE --state DIR [--tpm-version 1.2|2.0] < challenge.json
  tvd-agent quote    --tpm PATH --config FILE --state DIR [--tpm-version 1.2|2.0] < quote-request.json
`

// logOut is where log lines go (stderr; tests read it to check no secret leaks).
var logOut io.Writer = os.Stderr

func logf(format string, args ...interface{}) {
	fmt.Fprintf(logOut, "tvd-agent: "+format+"\n", args...)
}

func main() {
	os.Exit(cli(os.Args[1:], os.Stdin, os.Stdout))
}

func cli(args []string, stdin io.Reader, stdout io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(logOut, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("tvd-agent "+cmd, flag.ContinueOnError)
	a := &agent{}
	var xenbusPath string
	fs.StringVar(&a.tpmPath, "tpm", "", "TPM character device or swtpm unixio socket")
	fs.StringVar(&a.tpmVersion, "tpm-version", "", "1.2 or 2.0 (default: probe)")
	fs.StringVar(&a.configPath, "config", "/etc/tvd/agent.json", "the seed's agent config")
	fs.StringVar(&a.stateDir, "state", "/var/lib/tvd-agent", "state directory (TPM 1.2 AIK blob)")
	if cmd == "run" {
		fs.StringVar(&xenbusPath, "xenbus", "/dev/xen/xenbus", "xenbus device or xenstore Unix socket")
	}
	switch cmd {
	case "run", "report", "activate", "quote":
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	default:
		fmt.Fprintf(logOut, "tvd-agent: unknown command %q\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(logOut, "tvd-agent: unexpected arguments %q (the config is read from --config FILE)\n", fs.Args())
		return 2
	}
	if a.tpmPath == "" {
		fmt.Fprintf(logOut, "tvd-agent %s: --tpm PATH is required\n", cmd)
		return 2
	}
	if a.tpmVersion != "" && a.tpmVersion != v12 && a.tpmVersion != v20 {
		fmt.Fprintf(logOut, "tvd-agent: --tpm-version must be 1.2 or 2.0\n")
		return 2
	}

	out := json.NewEncoder(stdout)
	switch cmd {
	case "report":
		r := a.report("boot")
		_ = out.Encode(r)
		if r.Error != "" {
			logf("%s", r.Error)
			return 1
		}
	case "activate":
		var ch Challenge
		if err := json.NewDecoder(stdin).Decode(&ch); err != nil {
			_ = out.Encode(Response{Version: 1, Error: "challenge on stdin is not valid JSON: " + jsonErrorWhere(err)})
			return 1
		}
		r := a.activate(&ch)
		_ = out.Encode(r)
		if r.Error != "" {
			logf("%s", r.Error)
			return 1
		}
	case "quote":
		var req QuoteRequest
		if err := json.NewDecoder(stdin).Decode(&req); err != nil {
			_ = out.Encode(Quote{Version: 1, Error: "quote request on stdin is not valid JSON: " + jsonErrorWhere(err)})
			return 1
		}
		q := a.quote(&req)
		_ = out.Encode(q)
		if q.Error != "" {
			logf("%s", q.Error)
			return 1
		}
	case "run":
		xb, err := openXenbus(xenbusPath)
		if err != nil {
			logf("%v", err)
			return 1
		}
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
		var stopped atomic.Bool
		go func() { <-stop; stopped.Store(true); xb.Close() }()
		err = serve(a, xb)
		if err != nil && !stopped.Load() {
			logf("%v", err)
			return 1
		}
	}
	return 0
}
