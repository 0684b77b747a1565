import { connectionSchema } from "../../provider/transport/connection";
import { parseInputs, UNKNOWN } from "../../provider/core/define";
import { definition as hostFacts, hostFactsLifecycle } from "../../provider/resources/hostFacts/provider";

const checkInputs = (_schema: unknown, news: Record<string, unknown>) => hostFactsLifecycle.check({}, news);
import { hostFactsSchema } from "../../provider/resources/hostFacts/args";
import { InputValidationError, validate } from "../../provider/validation";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const fp = "SHA256:" + "a".repeat(43);
const good = { host: "127.0.0.1", port: 2201, privateKey: key, hostKeyFingerprint: fp };

describe("connection inputs", () => {
  it("fills documented defaults", () => {
    const r = validate(connectionSchema, {
      host: "dom0",
      privateKey: key,
      knownHosts: "dom0 ssh-ed25519 AAAA",
    });
    expect(r.ok && r.value).toMatchObject({
      port: 22,
      user: "root",
      connectTimeoutSec: 20,
      commandTimeoutSec: 300,
    });
  });

  it.each([
    ["shell metacharacters in host", { host: "dom0;reboot" }, "host", /hostname or IP address/],
    ["leading dash in host", { host: "-dom0" }, "host", /must not start with '-'/],
    ["port 0", { port: 0 }, "port", /between 1 and 65535/],
    ["user with spaces", { user: "root admin" }, "user", /POSIX user name/],
    ["a key path instead of the key", { privateKey: "/root/.ssh/id_ed25519" }, "privateKey", /not its path/],
    ["a malformed fingerprint", { hostKeyFingerprint: "abc" }, "hostKeyFingerprint", /SHA256:<43 base64/],
    ["an unknown property", { hots: "x" }, "(inputs)", /Unrecognized key/],
  ])("rejects %s, naming the property", (_, patch, property, reason) => {
    const r = validate(connectionSchema, { ...good, ...patch });
    expect(r.ok).toBe(false);
    const f = !r.ok ? r.failures.find((x) => x.property === property) : undefined;
    expect(f?.reason).toMatch(reason);
  });

  it("insists that the host key is verified, and says how", () => {
    const r = validate(connectionSchema, { host: "dom0", privateKey: key });
    expect(!r.ok && r.failures[0]).toMatchObject({
      property: "hostKeyFingerprint",
      reason: expect.stringMatching(
        /hostKeyFingerprint .* or knownHosts, or set insecureSkipHostKeyVerification: true/,
      ),
    });
  });

  it("refuses two ways of verifying at once", () => {
    const r = validate(connectionSchema, { ...good, insecureSkipHostKeyVerification: true });
    expect(!r.ok && r.failures[0].reason).toMatch(/only one of/);
  });
});

describe("checkInputs", () => {
  it("reports every bad property at once", async () => {
    const r = await checkInputs(hostFactsSchema, {
      connection: { ...good, host: "a b", port: 70000 },
      xenDataDir: "relative/dir",
    });
    expect(r.failures?.map((f) => f.property).sort()).toEqual([
      "connection.host",
      "connection.port",
      "xenDataDir",
    ]);
  });

  it("waits for values unknown during preview instead of failing them", async () => {
    const r = await checkInputs(hostFactsSchema, {
      __provider: "x",
      connection: { ...good, host: UNKNOWN },
      xenDataDir: "/ok",
    });
    expect(r.failures ?? []).toEqual([]);
  });

  it("ignores the engine's __provider key", async () => {
    expect(
      (await checkInputs(hostFactsSchema, { __provider: "x", connection: good })).failures,
    ).toBeUndefined();
  });
});

describe("parseInputs", () => {
  it("takes only the inputs out of stored state", () => {
    const parsed = parseInputs(hostFacts, {
      connection: good,
      kernel: "6.1",
      __provider: "x",
    });
    expect(parsed).toEqual({
      connection: expect.objectContaining({ host: "127.0.0.1" }),
      xenDataDir: "/var/lib/xen",
    });
  });

  it("throws an InputValidationError listing the failures", () => {
    expect(() => parseInputs(hostFacts, { connection: { ...good, port: -1 } })).toThrow(InputValidationError);
  });
});
