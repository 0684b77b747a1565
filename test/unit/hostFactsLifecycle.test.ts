/**
 * HostFacts through its lifecycle's own check, diff and delete: pure, no host is touched. Facts
 * are read, never written: no input replaces, and delete never needs the host.
 */
import { hostFactsLifecycle as facts } from "../../provider/resources/hostFacts/provider";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
// Port 1 on the loopback refuses at once: any attempt to connect would fail the test.
const connection = {
  host: "127.0.0.1",
  port: 1,
  privateKey: key,
  hostKeyFingerprint: "SHA256:" + "a".repeat(43),
};

type Props = Record<string, unknown>;

async function checked(olds: Props, news: Props): Promise<Props> {
  const r = await facts.check(olds, { owner: "p/s HostFacts dom0-a", ...news });
  expect(r.failures ?? []).toEqual([]);
  return r.inputs as Props;
}

describe("HostFacts lifecycle", () => {
  it("fills the default directory in and keeps it in state", async () => {
    expect(await checked({}, { connection })).toMatchObject({
      xenDataDir: "/var/lib/xen",
      defaults: { xenDataDir: "/var/lib/xen" },
    });
  });

  it.each([
    ["another host", { connection: { ...connection, host: "127.0.0.2" } }],
    ["other credentials", { connection: { ...connection, user: "xen" } }],
    ["another directory", { connection, xenDataDir: "/srv/xen" }],
  ])("on %s, plans an update that probes again, never a replacement", async (_name, news) => {
    const old = await checked({}, { connection });
    const d = await facts.diff("127.0.0.1:1", old, await checked(old, news));
    expect(d).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  });

  it("plans nothing for the same inputs, the default spelled out", async () => {
    const old = await checked({}, { connection });
    const news = await checked(old, { connection, xenDataDir: "/var/lib/xen" });
    expect(await facts.diff("127.0.0.1:1", old, news)).toEqual({ changes: false });
  });

  it("deletes without contacting the host: it owns nothing there", async () => {
    const state = await checked({}, { connection });
    await expect(facts.delete("127.0.0.1:1", state)).resolves.toBeUndefined();
  });
});
