/**
 * The SeedImage lifecycle driven directly (as the engine would) against a lab host. What the
 * image holds is read back on the host with mtools, never taken from the writer's word.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderSeedFiles } from "../../provider/cloudinit/render";
import { OwnershipConflictError, type Artifact } from "../../provider/core/ownership";
import { Dom0 } from "../../provider/dom0/dom0";
import { memberSeedOf, seedImageSchema } from "../../provider/resources/seedImage/args";
import { seedImageLifecycle } from "../../provider/resources/seedImage/provider";
import { connectionSchema } from "../../provider/transport/connection";
import { InputValidationError, validate } from "../../provider/validation";
import { startTestLab, type TestLab } from "../support/lab";

jest.setTimeout(120_000);

let lab: TestLab;
const A = "dom0-a";
const IMG = "/var/lib/xen/images/m1-seed.img";
const OWNER = "lab/test SeedImage m1-seed";
let connection: Record<string, unknown>;
let dom0: Dom0;
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
  dom0 = await Dom0.connect(connectionSchema.parse(connection));
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

/** What check makes of the inputs (defaults, the derived path, the owner), as the engine passes them on. */
async function checked(inputs: Props, olds: Props = {}): Promise<Props> {
  const r = await seedImageLifecycle.check(olds, { owner: OWNER, ...inputs });
  expect(r.failures ?? []).toEqual([]);
  return r.inputs as Props;
}

const file = (name: string, role = "seed image", property = "path"): Artifact => ({
  type: "file",
  name,
  role,
  property,
});
/** Who the dom0's ownership record names as the owner of a file, if anyone. */
const ownerOf = async (path: string) => (await dom0.owners([file(path)])).get(`file:${path}`)?.owner;
const sha = async (path: string) => (await sh('sha256sum < "$1"', path)).split(" ")[0];

/** What the renderer makes of these inputs: the expected content of the image. */
function rendered(props: Props) {
  const r = validate(seedImageSchema, props);
  if (!r.ok) throw new Error(JSON.stringify(r.failures));
  return renderSeedFiles(memberSeedOf(r.value));
}

describe("SeedImage", () => {
  let id: string;
  let outs: Props;

  it("creates a cidata image, mode 0600, holding exactly the rendered seed, recorded as its own", async () => {
    const inputs = await checked(seedInputs());
    ({ id, outs } = await seedImageLifecycle.create(inputs));
    expect(id).toBe(IMG);
    expect(outs).toMatchObject({ path: IMG, owner: OWNER });
    expect(outs.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await ownerOf(IMG)).toBe(OWNER);

    const files = rendered(seedInputs());
    for (const name of ["meta-data", "user-data", "network-config"] as const) {
      expect(await onHost(IMG, name)).toBe(files[name]);
    }
    const userData = await onHost(IMG, "user-data");
    expect(userData).toContain(`  ed25519_certificate: "${hostKey.certificate}"`);
    expect(userData).toContain(`@cert-authority * ${caPublicKey}\n`);
    expect(await onHost(IMG, "meta-data")).toMatch(/^instance-id: "m1-[0-9a-f]{12}"\n/);
    expect(await sh('MTOOLS_SKIP_CHECK=1 mlabel -i "$1" -s ::', IMG)).toMatch(/Volume label is cidata\s*$/);
    expect(await sh('stat -c %a "$1"', IMG)).toBe("600\n");
    expect(await sha(IMG)).toBe(outs.sha256);
    // A refresh right after finds nothing to change.
    const read = await seedImageLifecycle.read(id, outs);
    expect(read.props).toEqual(outs);
    expect(await seedImageLifecycle.diff(id, read.props!, await checked(seedInputs(), inputs))).toEqual({
      changes: false,
    });
  });

  it("rewrites the image in place for a changed seed, leaving nothing partial behind", async () => {
    const news = await checked(seedInputs({}, { hostname: "m1b" }));
    expect(await seedImageLifecycle.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    const { outs: after } = await seedImageLifecycle.update(id, outs, news);
    expect(after).toMatchObject({ path: IMG });
    expect(after.sha256).not.toBe(outs.sha256);
    expect(await sha(IMG)).toBe(after.sha256);
    expect(await onHost(IMG, "user-data")).toBe(rendered(seedInputs({}, { hostname: "m1b" }))["user-data"]);
    expect(await onHost(IMG, "user-data")).toContain('hostname: "m1b"\n');
    // A new seed is a new cloud-init instance, so the guest applies it at its next boot.
    expect(await onHost(IMG, "meta-data")).not.toBe(rendered(seedInputs())["meta-data"]);
    expect(await sh('ls "$(dirname "$1")" | grep -c partial || true', IMG)).toBe("0\n");
    expect(await sh('stat -c %a "$1"', IMG)).toBe("600\n");
    expect(await seedImageLifecycle.diff(id, after, news)).toMatchObject({ changes: false });
    outs = after;
  });

  it("shows an image altered or removed out of band as drift on path, and the next update repairs it", async () => {
    const inputs = await checked(seedInputs({}, { hostname: "m1b" }));
    await sh('printf TAMPERED | dd of="$1" bs=1 seek=65536 conv=notrunc status=none', IMG);
    const tampered = await seedImageLifecycle.read(id, outs);
    expect(tampered.props).toMatchObject({ path: `${IMG} (changed on the host)`, sha256: outs.sha256 });
    // The refreshed inputs keep the declared path: check plans the repair.
    const again = await checked(seedInputs({}, { hostname: "m1b" }), tampered.inputs as Props);
    expect(again.path).toBe(IMG);
    expect(await seedImageLifecycle.diff(id, tampered.props!, again)).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    const { outs: repaired } = await seedImageLifecycle.update(id, tampered.props!, again);
    expect(repaired).toMatchObject({ path: IMG, sha256: outs.sha256 });
    expect(await sha(IMG)).toBe(outs.sha256);

    await sh('rm -f "$1"', IMG);
    const read = await seedImageLifecycle.read(id, repaired);
    expect(read.id).toBe(id);
    expect(read.props).toMatchObject({ path: `${IMG} (missing on the host)` });
    expect(await seedImageLifecycle.diff(id, read.props!, inputs)).toMatchObject({
      changes: true,
      replaces: [],
    });
    const { outs: back } = await seedImageLifecycle.update(id, read.props!, inputs);
    expect(back).toMatchObject({ path: IMG, sha256: outs.sha256 });
    expect(await sha(IMG)).toBe(outs.sha256);
    expect(await ownerOf(IMG)).toBe(OWNER);
    outs = back;
  });

  it("rewrites in place only a file it owns: one put there by another resource is refused", async () => {
    const inputs = await checked(seedInputs({}, { hostname: "m1b" }));
    // The image goes, and another resource makes (and records) a file at its path.
    await sh('rm -f "$1"', IMG);
    await dom0.release(OWNER, [`file:${IMG}`]);
    await dom0.claim("lab/test Vtpm m1-vtpm", [file(IMG, "vTPM key image", "imagePath")], false);
    await sh('printf KEYS > "$1"', IMG);
    const read = await seedImageLifecycle.read(id, outs);
    expect(read.props).toMatchObject({ path: `${IMG} (changed on the host)` });
    await expect(seedImageLifecycle.update(id, read.props!, inputs)).rejects.toThrow(
      `seed image ${IMG} already exists on ${dom0.endpoint}, owned by lab/test Vtpm m1-vtpm (its vTPM key image)`,
    );
    expect(await sh('cat "$1"', IMG)).toBe("KEYS");
    // Nor does delete remove it: it says what it leaves.
    const log = jest.spyOn(console, "error").mockImplementation(() => undefined);
    await seedImageLifecycle.delete(id, read.props!);
    expect(log).toHaveBeenCalledWith(
      `pulumi-tvd: leaving seed image ${IMG} on ${dom0.endpoint}: owned by lab/test Vtpm m1-vtpm`,
    );
    log.mockRestore();
    expect(await sh('cat "$1"', IMG)).toBe("KEYS");
    expect(await ownerOf(IMG)).toBe("lab/test Vtpm m1-vtpm");
    await dom0.release("lab/test Vtpm m1-vtpm", [`file:${IMG}`]);
    await sh('rm -f "$1"', IMG);
  });

  it("delete removes the image and its record, and a second delete is fine", async () => {
    const { outs: made } = await seedImageLifecycle.create(await checked(seedInputs()));
    await seedImageLifecycle.delete(id, made);
    await seedImageLifecycle.delete(id, made);
    expect(await sh('test -e "$1" && echo kept || echo gone', IMG)).toBe("gone\n");
    expect(await ownerOf(IMG)).toBeUndefined();
  });

  it("A SeedImage whose path is an existing vTPM's image: refused, and the vTPM's keys are kept", async () => {
    const image = "/var/lib/xen/images/web1-vtpm.img";
    const vtpm = "lab/test Vtpm web1-vtpm";
    await dom0.claim(vtpm, [file(image, "vTPM key image", "imagePath")], false);
    await sh('mkdir -p "$(dirname "$1")" && head -c 65536 /dev/urandom > "$1"', image);
    const keys = await sha(image);
    const inputs = await checked(seedInputs({ path: image }));
    const failure = seedImageLifecycle.create(inputs);
    await expect(failure).rejects.toThrow(OwnershipConflictError);
    await expect(failure).rejects.toThrow(
      `seed image ${image} already exists on ${dom0.endpoint}, owned by ${vtpm} (its vTPM key image); ` +
        `choose another path, or remove it from ${vtpm} first`,
    );
    // Not even adopt takes another resource's file.
    await expect(seedImageLifecycle.create({ ...inputs, adopt: true })).rejects.toThrow(
      OwnershipConflictError,
    );
    expect(await sha(image)).toBe(keys);
    expect(await ownerOf(image)).toBe(vtpm);
  });

  it("refuses a file it did not make, naming adopt; with adopt: true takes it over", async () => {
    const path = "/var/lib/xen/images/hand-made.img";
    await sh('printf HAND > "$1"', path);
    const inputs = await checked(seedInputs({ path }));
    await expect(seedImageLifecycle.create(inputs)).rejects.toThrow(
      `seed image ${path} already exists on ${dom0.endpoint}, not made by pulumi-tvd for this resource (no ownership record); ` +
        "set adopt: true to take it over, or choose another path",
    );
    expect(await sh('cat "$1"', path)).toBe("HAND");
    expect(await ownerOf(path)).toBeUndefined();

    const { outs: adopted } = await seedImageLifecycle.create(
      await checked(seedInputs({ path, adopt: true })),
    );
    expect(await sha(path)).toBe(adopted.sha256);
    expect(await ownerOf(path)).toBe(OWNER);
    await seedImageLifecycle.delete(path, adopted);
    expect(await sh('test -e "$1" && echo kept || echo gone', path)).toBe("gone\n");
  });

  it("replaces for a new path or host, never for a seed change", async () => {
    const inputs = seedInputs({}, { hostname: "m1b" });
    expect(
      await seedImageLifecycle.diff(
        id,
        outs,
        await checked({ ...inputs, path: "/var/lib/xen/images/other-seed.img" }),
      ),
    ).toMatchObject({ changes: true, replaces: ["path"], deleteBeforeReplace: true });
    expect(
      await seedImageLifecycle.diff(
        id,
        outs,
        await checked({ ...inputs, connection: { ...connection, host: "127.0.0.99" } }),
      ),
    ).toMatchObject({ replaces: ["connection"] });
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
