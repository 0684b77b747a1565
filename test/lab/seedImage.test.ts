/**
 * The SeedImage lifecycle driven directly (as the engine would) against a lab host. What the
 * image holds is read back on the host with mtools, never taken from the writer's word.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderSeedFiles } from "../../provider/cloudinit/render";
import { memberSeedOf, seedImageSchema } from "../../provider/resources/seedImage/args";
import { seedImageLifecycle } from "../../provider/resources/seedImage/provider";
import { InputValidationError, validate } from "../../provider/validation";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";
const IMG = "/var/lib/xen/images/m1-seed.img";
let connection: Record<string, unknown>;
let hostKey: { privateKey: string; publicKey: string; certificate: string };
let caPublicKey: string;
type Props = Record<string, unknown>;

/** A real ed25519 host key, certified by a real SSH CA, as the TVD's authority makes them. */
function sshMaterial() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tvd-seed-keys-"));
  try {
    const keygen = (...args: string[]) => execFileSync("ssh-keygen", ["-q", ...args], { stdio: "ignore" });
    keygen("-t", "ed25519", "-N", "", "-C", "blue-ca", "-f", `${dir}/ca`);
    keygen("-t", "ed25519", "-N", "", "-C", "m1", "-f", `${dir}/host`);
    keygen("-s", `${dir}/ca`, "-h", "-I", "m1", "-n", "m1,m1.blue.tvd", `${dir}/host.pub`);
    const read = (f: string) => readFileSync(`${dir}/${f}`, "utf8");
    hostKey = {
      privateKey: read("host"),
      publicKey: read("host.pub").trim(),
      certificate: read("host-cert.pub").trim(),
    };
    caPublicKey = read("ca.pub").trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  sshMaterial();
  lab = await startTestLab({ hosts: 1 });
  connection = lab.connection(A);
});

afterAll(async () => lab?.stop());

const sh = async (script: string, ...args: string[]) => {
  const r = await lab.sh(A, script, ...args);
  if (r.exitCode !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout;
};
/** One file of the image on the host, as mtools on the dom0 reads it. */
const onHost = (img: string, name: string) => sh('MTOOLS_SKIP_CHECK=1 mcopy -i "$1" "::$2" -', img, name);

const PEM = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
const seedInputs = (extra: Props = {}, seed: Props = {}): Props => ({
  connection,
  name: "m1",
  seed: {
    hostname: "m1",
    fqdn: "m1.blue.tvd",
    network: { kind: "static", address: "10.50.0.11/24", gateway: "10.50.0.1", dns: ["10.50.0.1"] },
    macAddress: "00:16:3e:00:00:11",
    sshHostKey: hostKey,
    sshAuthorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@example"],
    sshCaPublicKeys: [caPublicKey],
    x509: {
      certPem: PEM("CERTIFICATE", "MIIBmember"),
      keyPem: PEM("PRIVATE KEY", "MIGHkey"),
      caCertPem: PEM("CERTIFICATE", "MIIBca"),
    },
    ...seed,
  },
  ...extra,
});

/** What the renderer makes of these inputs: the expected content of the image. */
function rendered(props: Props) {
  const r = validate(seedImageSchema, props);
  if (!r.ok) throw new Error(JSON.stringify(r.failures));
  return renderSeedFiles(memberSeedOf(r.value));
}

describe("SeedImage", () => {
  let id: string;
  let outs: Props;

  it("creates a cidata image, mode 0600, holding exactly the rendered seed", async () => {
    const inputs = seedInputs();
    expect((await seedImageLifecycle.check({}, inputs)).failures).toBeUndefined();
    ({ id, outs } = await seedImageLifecycle.create(inputs));
    expect(outs).toMatchObject({ path: IMG, present: true, sizeBytes: 1024 * 1024 });
    expect(outs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(outs.observedSha256).toBe(outs.sha256);

    const files = rendered(inputs);
    for (const name of ["meta-data", "user-data", "network-config"] as const) {
      expect(await onHost(IMG, name)).toBe(files[name]);
    }
    const userData = await onHost(IMG, "user-data");
    expect(userData).toContain(`  ed25519_certificate: "${hostKey.certificate}"`);
    expect(userData).toContain(`@cert-authority * ${caPublicKey}\n`);
    expect(await onHost(IMG, "meta-data")).toMatch(/^instance-id: "m1-[0-9a-f]{12}"\n/);
    expect(await sh('MTOOLS_SKIP_CHECK=1 mlabel -i "$1" -s ::', IMG)).toMatch(/Volume label is cidata\s*$/);
    expect(await sh('stat -c %a "$1"', IMG)).toBe("600\n");
    expect((await sh('sha256sum < "$1"', IMG)).split(" ")[0]).toBe(outs.sha256);
  });

  it("rewrites the image in place for a changed seed, leaving nothing partial behind", async () => {
    const news = seedInputs({}, { hostname: "m1b" });
    expect(await seedImageLifecycle.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const { outs: after } = await seedImageLifecycle.update(id, outs, news);
    expect(after).toMatchObject({ path: IMG, present: true });
    expect(after.sha256).not.toBe(outs.sha256);
    expect(after.observedSha256).toBe(after.sha256);
    expect(await onHost(IMG, "user-data")).toBe(rendered(news)["user-data"]);
    expect(await onHost(IMG, "user-data")).toContain('hostname: "m1b"\n');
    // A new seed is a new cloud-init instance, so the guest applies it at its next boot.
    expect(await onHost(IMG, "meta-data")).not.toBe(rendered(seedInputs())["meta-data"]);
    expect(await sh('ls "$(dirname "$1")" | grep -c partial || true', IMG)).toBe("0\n");
    expect(await sh('stat -c %a "$1"', IMG)).toBe("600\n");
    expect(await seedImageLifecycle.diff(id, after, news)).toMatchObject({ changes: false });
    outs = after;
  });

  it("reports an image altered or removed out of band, and the next update repairs it", async () => {
    const inputs = seedInputs({}, { hostname: "m1b" });
    await sh('printf TAMPERED | dd of="$1" bs=1 seek=65536 conv=notrunc status=none', IMG);
    const tampered = (await seedImageLifecycle.read(id, outs)).props as Props;
    expect(tampered).toMatchObject({ present: true, sha256: outs.sha256 });
    expect(tampered.observedSha256).not.toBe(outs.sha256);
    expect(await seedImageLifecycle.diff(id, tampered, inputs)).toMatchObject({
      changes: true,
      replaces: [],
    });
    const { outs: repaired } = await seedImageLifecycle.update(id, tampered, inputs);
    expect(repaired.observedSha256).toBe(outs.sha256);

    await sh('rm -f "$1"', IMG);
    const read = await seedImageLifecycle.read(id, repaired);
    expect(read.id).toBe(id);
    expect(read.props).toMatchObject({ present: false, observedSha256: null });
    expect(await seedImageLifecycle.diff(id, read.props!, inputs)).toMatchObject({ changes: true });
    const { outs: back } = await seedImageLifecycle.update(id, read.props!, inputs);
    expect(back).toMatchObject({ present: true, observedSha256: outs.sha256 });
    expect((await sh('sha256sum < "$1"', IMG)).split(" ")[0]).toBe(outs.sha256);
    outs = back;
  });

  it("replaces for a new path or host, never for a seed change", async () => {
    const inputs = seedInputs({}, { hostname: "m1b" });
    expect(
      await seedImageLifecycle.diff(id, outs, { ...inputs, path: "/var/lib/xen/images/other-seed.img" }),
    ).toMatchObject({ changes: true, replaces: ["path"], deleteBeforeReplace: true });
    expect(
      await seedImageLifecycle.diff(id, outs, {
        ...inputs,
        connection: { ...connection, host: "127.0.0.99" },
      }),
    ).toMatchObject({ replaces: ["host"] });
  });

  it("delete removes the image, and a second delete is fine", async () => {
    await seedImageLifecycle.delete(id, outs);
    await seedImageLifecycle.delete(id, outs);
    expect(await sh('test -e "$1" && echo kept || echo gone', IMG)).toBe("gone\n");
  });

  it("rejects a path outside allowedRoots in check, before any host is touched", async () => {
    const bad = seedInputs({ path: "/etc/m1-seed.img" });
    expect((await seedImageLifecycle.check({}, bad)).failures).toEqual([
      {
        property: "path",
        reason:
          "/etc/m1-seed.img: must be under /var/lib/xen or /etc/xen (set allowedRoots to permit another directory)",
      },
    ]);
    // Nothing listens on port 1: reaching for the host would fail otherwise.
    const unreachable = { ...bad, connection: { ...connection, host: "127.0.0.1", port: 1 } };
    await expect(seedImageLifecycle.create(unreachable)).rejects.toThrow(InputValidationError);
    expect(await sh("test -e /etc/m1-seed.img && echo written || echo none")).toBe("none\n");
  });
});
