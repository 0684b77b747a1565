/**
 * The e2e harness runs a CLI command again only when the engine gave up on a plugin that was
 * still starting (test/e2e/pulumi.ts). Anything else that fails must reach the test as it is.
 */
import { pluginNeverStarted } from "../e2e/pulumi";

const BIN = "/root/.cache/pulumi-tvd/pulumi-v3.276.0/bin/pulumi-resource-pulumi-nodejs";
// The diagnostic as the engine wrote it, inside the --json event stream and on stderr.
const HANDSHAKE =
  `pulumi-nodejs (resource) plugin [${BIN}] did not come alive: failed to handshake with ` +
  `'${BIN}': rpc error: code = DeadlineExceeded desc = context deadline exceeded`;
const NO_RPC = `pulumi-nodejs (resource) plugin [${BIN}] did not begin responding to RPC connections`;

describe("pluginNeverStarted", () => {
  it("recognises the engine's plugin-start deadline, in the event stream or on stderr", () => {
    const event = JSON.stringify({
      diagnosticEvent: { message: `error: ${HANDSHAKE}\n`, severity: "error" },
    });
    expect(pluginNeverStarted({ code: 255, stdout: event, stderr: "" })).toBe(true);
    expect(pluginNeverStarted({ code: 255, stdout: "", stderr: `error: ${HANDSHAKE}\n` })).toBe(true);
    expect(pluginNeverStarted({ code: 255, stdout: "", stderr: `error: ${NO_RPC}\n` })).toBe(true);
  });

  it("leaves every other failure, and any success, to the test", () => {
    expect(pluginNeverStarted({ code: 0, stdout: "", stderr: HANDSHAKE })).toBe(false);
    // A provider that started and then failed its handshake for another reason is a real failure.
    const refused = HANDSHAKE.replace("DeadlineExceeded", "Internal");
    expect(pluginNeverStarted({ code: 255, stdout: "", stderr: refused })).toBe(false);
    // A resource's own error that merely mentions a plugin is a real failure too.
    expect(
      pluginNeverStarted({
        code: 1,
        stdout: "",
        stderr: "error: tvd:index:Vtpm (g0-vtpm): host h1: xl vtpm-attach timed out (DeadlineExceeded)",
      }),
    ).toBe(false);
  });
});
