import { buildSeedImage, readSeedFile } from "../../provider/cloudinit/image";
import { renderSeedFiles, toYaml, type MemberSeed } from "../../provider/cloudinit/render";
import { driftMarker, UNKNOWN } from "../../provider/core/define";
import { declareInProgram, resetProgramDeclarations } from "../../provider/core/ownership";
import { memberSeedOf, seedImageSchema } from "../../provider/resources/seedImage/args";
import { definition, seedDrift, seedImageLifecycle } from "../../provider/resources/seedImage/provider";
import { validate } from "../../provider/validation";

const HOST_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nAAAEbm9uZQ==\n-----END OPENSSH PRIVATE KEY-----\n";
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBmember\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIGHkey\n-----END PRIVATE KEY-----\n";
const CA = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";

const seed = (extra: Partial<MemberSeed> = {}): MemberSeed => ({
  instanceId: "m1-0001",
  hostname: "m1",
  fqdn: "m1.blue.tvd",
  network: {
    kind: "static",
    address: "10.50.0.11/24",
    gateway: "10.50.0.1",
    dns: ["10.50.0.2", "10.50.0.3"],
  },
  macAddress: "00:16:3e:00:00:11",
  sshHostKey: {
    privateKey: HOST_KEY,
    publicKey: "ssh-ed25519 AAAAC3host m1",
    certificate: "ssh-ed25519-cert-v01@openssh.com AAAAIcert m1",
  },
  sshAuthorizedKeys: ["ssh-ed25519 AAAAC3ops ops@example"],
  sshCaPublicKeys: ["ssh-ed25519 AAAAC3ca blue-ca"],
  x509: { certPem: CERT, keyPem: KEY, caCertPem: CA },
  ...extra,
});

/** Lines that start a top-level key: the document's structure, whatever the values hold. */
const topLevelKeys = (yaml: string) =>
  yaml
    .split("\n")
    .filter((l) => /^[A-Za-z"#]/.test(l))
    .map((l) => (l.startsWith("#") ? l : l.slice(0, l.indexOf(":"))));

/** The literal block below `head` (a `key: |` line), without its indentation. */
function blockAfter(yaml: string, head: string): string {
  const lines = yaml.split("\n");
  const at = lines.findIndex((l) => l.trimStart() === head);
  expect(at).toBeGreaterThanOrEqual(0);
  // Content sits two columns right of its key, which follows the dash in a sequence item.
  const keyColumn = lines[at].length - lines[at].trimStart().length + (head.startsWith("- ") ? 2 : 0);
  const indent = keyColumn + 2;
  const body: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (l !== "" && !l.startsWith(" ".repeat(indent))) break;
    body.push(l.slice(indent));
  }
  // As the clip indicator (`|`) reads it: one final newline.
  return body.join("\n").replace(/\n*$/, "\n");
}

describe("renderSeedFiles", () => {
  it("writes a static network-config v2 matched by MAC, with route and name servers", () => {
    expect(renderSeedFiles(seed())["network-config"]).toBe(
      [
        "ethernets:",
        "  eth0:",
        "    addresses:",
        '      - "10.50.0.11/24"',
        "    dhcp4: false",
        "    match:",
        '      macaddress: "00:16:3e:00:00:11"',
        "    nameservers:",
        "      addresses:",
        '        - "10.50.0.2"',
        '        - "10.50.0.3"',
        "    routes:",
        '      - to: "0.0.0.0/0"',
        '        via: "10.50.0.1"',
        '    set-name: "eth0"',
        "version: 2",
        "",
      ].join("\n"),
    );
  });

  it("writes a dhcp network-config v2, matched by name when no MAC is given", () => {
    const files = renderSeedFiles(
      seed({ network: { kind: "dhcp" }, macAddress: undefined, interfaceName: "enX0" }),
    );
    expect(files["network-config"]).toBe("ethernets:\n  enX0:\n    dhcp4: true\nversion: 2\n");
  });

  it("routes an IPv6 gateway as ::/0", () => {
    const files = renderSeedFiles(
      seed({ network: { kind: "static", address: "fd00:50::11/64", gateway: "fd00:50::1" } }),
    );
    expect(files["network-config"]).toContain('      - to: "::/0"\n        via: "fd00:50::1"\n');
  });

  it("writes meta-data with the instance id and host name", () => {
    expect(renderSeedFiles(seed())["meta-data"]).toBe('instance-id: "m1-0001"\nlocal-hostname: "m1"\n');
  });

  it("gives cloud-init the ed25519 host key, its certificate and the sshd drop-in that serves it", () => {
    const userData = renderSeedFiles(seed())["user-data"];
    expect(userData.startsWith("#cloud-config\n")).toBe(true);
    expect(userData).toContain(
      [
        "ssh_keys:",
        '  ed25519_certificate: "ssh-ed25519-cert-v01@openssh.com AAAAIcert m1"',
        "  ed25519_private: |",
        "    -----BEGIN OPENSSH PRIVATE KEY-----",
        "    b3BlbnNzaC1rZXktdjEAAAAA",
        "    AAAEbm9uZQ==",
        "    -----END OPENSSH PRIVATE KEY-----",
        '  ed25519_public: "ssh-ed25519 AAAAC3host m1"',
      ].join("\n"),
    );
    expect(userData).toContain('ssh_authorized_keys:\n  - "ssh-ed25519 AAAAC3ops ops@example"\n');
    expect(blockAfter(userData, "- content: |")).toBe("@cert-authority * ssh-ed25519 AAAAC3ca blue-ca\n");
    expect(userData).toContain('    path: "/etc/ssh/ssh_known_hosts"\n');
    expect(userData).toContain(
      "  - content: |\n      HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n" +
        '    owner: "root:root"\n    path: "/etc/ssh/sshd_config.d/50-tvd-host-certificate.conf"\n',
    );
  });

  it("leaves out what is not given: no host key, no CA, no X.509", () => {
    const userData = renderSeedFiles(
      seed({
        sshHostKey: undefined,
        sshCaPublicKeys: [],
        x509: undefined,
        sshAuthorizedKeys: [],
        fqdn: undefined,
      }),
    )["user-data"];
    expect(userData).toBe('#cloud-config\nhostname: "m1"\npreserve_hostname: false\n');
  });

  it("writes PEM as literal blocks under /etc/tvd, the key 0600", () => {
    const userData = renderSeedFiles(seed())["user-data"];
    for (const [pem, path, mode] of [
      [CA, "/etc/tvd/ca.crt", "0644"],
      [CERT, "/etc/tvd/member.crt", "0644"],
      [KEY, "/etc/tvd/member.key", "0600"],
    ]) {
      const block = [
        "  - content: |",
        ...pem
          .trimEnd()
          .split("\n")
          .map((l) => `      ${l}`),
      ].join("\n");
      expect(userData).toContain(
        `${block}\n    owner: "root:root"\n    path: "${path}"\n    permissions: "${mode}"\n`,
      );
    }
  });

  it("is deterministic: same seed, same bytes, whatever order files and keys came in", () => {
    const a = seed({
      extraFiles: [
        { path: "/etc/b", content: "b" },
        { path: "/etc/a", content: "a" },
      ],
    });
    const b = seed({
      extraFiles: [
        { path: "/etc/a", content: "a" },
        { path: "/etc/b", content: "b" },
      ],
    });
    expect(renderSeedFiles(a)).toEqual(renderSeedFiles(b));
    expect(renderSeedFiles(a)).toEqual(renderSeedFiles(structuredClone(a)));
  });

  it("keeps hostile values inside their scalars: quotes, ': ', '#', newlines, YAML words", () => {
    const hostile = 'ssh-ed25519 AAAA "x": y # z\nwrite_files: [oops]\n- a: b';
    const userData = renderSeedFiles(
      seed({
        sshAuthorizedKeys: [hostile.split("\n")[0], "yes", "0644"],
        extraFiles: [{ path: "/etc/motd", content: "no\n  runcmd: [reboot]\n", permissions: "0640" }],
      }),
    )["user-data"];
    expect(topLevelKeys(userData)).toEqual([
      "#cloud-config",
      "fqdn",
      "hostname",
      "preserve_hostname",
      "ssh_authorized_keys",
      "ssh_keys",
      "write_files",
    ]);
    expect(userData).toContain('  - "ssh-ed25519 AAAA \\"x\\": y # z"\n  - "yes"\n  - "0644"\n');
    // A block scalar can never end early: every content line is indented below its key.
    expect(blockAfter(userData, "- content: |")).toBe("no\n  runcmd: [reboot]\n");
    expect(userData).toContain(
      '  - content: |\n      no\n        runcmd: [reboot]\n    owner: "root:root"\n    path: "/etc/motd"\n',
    );
    // Multi-line values that a block cannot hold are one double-quoted line.
    expect(toYaml({ v: hostile + "\r" })).toBe(
      'v: "ssh-ed25519 AAAA \\"x\\": y # z\\nwrite_files: [oops]\\n- a: b\\r"\n',
    );
  });

  it("emits literal blocks that keep leading spaces and trailing newlines exactly", () => {
    expect(toYaml({ a: "  x\ny\n" })).toBe("a: |2\n    x\n  y\n");
    expect(toYaml({ a: "x\ny" })).toBe("a: |-\n  x\n  y\n");
    expect(toYaml({ a: "x\n\n\n" })).toBe("a: |+\n  x\n\n\n");
    expect(toYaml({ a: "x\n\ny\n" })).toBe("a: |\n  x\n\n  y\n");
  });

  it("escapes everything outside printable ASCII, and quotes keys YAML would misread", () => {
    expect(toYaml({ on: "é\u2028\u0085\x7f😀", "a b": [], c: {} })).toBe(
      '"a b": []\nc: {}\n"on": "\\xe9\\u2028\\x85\\x7f\\U0001f600"\n',
    );
    expect(() => toYaml({ a: "\ud800" })).toThrow(/lone UTF-16 surrogate/);
  });
});

describe("seed image", () => {
  it("is a cidata FAT image holding the files; the same files give the same bytes", async () => {
    const files = renderSeedFiles(seed());
    const a = await buildSeedImage(files);
    const b = await buildSeedImage({ ...files });
    expect(a.length).toBe(1024 * 1024);
    expect(a.equals(b)).toBe(true);
    for (const name of ["meta-data", "user-data", "network-config"] as const) {
      expect(await readSeedFile(a, name)).toBe(files[name]);
    }
    // The FAT12/16 boot sector's volume label, at offset 43.
    expect(a.subarray(43, 54).toString("latin1")).toBe("cidata     ");
    const c = await buildSeedImage({ ...files, "meta-data": 'instance-id: "m1-0002"\n' });
    expect(c.equals(a)).toBe(false);
  });

  it("gives the same bytes when built later: mkfs.vfat --invariant is detected (its usage is on stderr)", async () => {
    const files = { "meta-data": 'instance-id: "m1"\n' };
    const a = await buildSeedImage(files);
    // FAT timestamps count in 2-second steps: a build in the next step would differ without it.
    await new Promise((r) => setTimeout(r, 2100));
    expect((await buildSeedImage(files)).equals(a)).toBe(true);
  });

  it("says to install dosfstools and mtools where pulumi runs when they are missing", async () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      await expect(buildSeedImage({ "meta-data": "" })).rejects.toThrow(
        /mkfs\.vfat was not found: install dosfstools and mtools on the machine that runs pulumi/,
      );
    } finally {
      process.env.PATH = path;
    }
  });

  it("says what to raise when the files do not fit", async () => {
    await expect(buildSeedImage({ big: "x".repeat(200 * 1024) }, 64)).rejects.toThrow(
      "the seed files do not fit in 64 KiB: raise sizeKiB or make extraFiles smaller",
    );
  });
});

describe("SeedImage inputs", () => {
  const connection = {
    host: "dom0",
    hostKeyFingerprint: `SHA256:${"A".repeat(43)}`,
    privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
  };
  const failures = (props: Record<string, unknown>) => {
    const r = validate(seedImageSchema, props);
    return r.ok ? [] : r.failures.map((f) => `${f.property}: ${f.reason}`);
  };

  it("rejects a path outside allowedRoots, a file over the seed's own and bad values, all at once", () => {
    expect(
      failures({
        connection,
        name: "m1",
        path: "/tmp/m1-seed.img",
        seed: {
          hostname: "m1",
          network: { kind: "static", address: "10.50.0.11" },
          sshAuthorizedKeys: ["ssh-ed25519 AAAA\nsecond line"],
          extraFiles: [{ path: "/etc/tvd/member.key", content: "" }],
        },
      }),
    ).toEqual([
      "seed.network.address: must be an address with its prefix length, such as 10.50.0.11/24",
      "seed.sshAuthorizedKeys.0: must be one line, without control characters",
      "seed.extraFiles.0.path: /etc/tvd/member.key is written by the seed itself; choose another path",
      "path: /tmp/m1-seed.img: must be under /var/lib/xen or /etc/xen (set allowedRoots to permit another directory)",
    ]);
    expect(
      failures({
        connection,
        name: "m1",
        seed: { hostname: "m1", extraFiles: [{ path: "/etc/tvd/member.key", content: "" }] },
      }),
    ).toEqual([
      "seed.extraFiles.0.path: /etc/tvd/member.key is written by the seed itself; choose another path",
    ]);
  });

  it("derives the instance id from the seed, so a changed seed is a new cloud-init instance", () => {
    const parse = (hostname: string) => {
      const r = validate(seedImageSchema, { connection, name: "m1", seed: { hostname } });
      if (!r.ok) throw new Error(JSON.stringify(r.failures));
      return memberSeedOf(r.value).instanceId;
    };
    expect(parse("m1")).toMatch(/^m1-[0-9a-f]{12}$/);
    expect(parse("m1")).toBe(parse("m1"));
    expect(parse("m1b")).not.toBe(parse("m1"));
  });
});

describe("SeedImage definition", () => {
  const connection = {
    host: "dom0",
    hostKeyFingerprint: `SHA256:${"A".repeat(43)}`,
    privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
  };
  const OWNER = "p/s SeedImage m1-seed";
  const IMG = "/var/lib/xen/images/m1-seed.img";
  const base = { connection, name: "m1", seed: { hostname: "m1" } };
  type Props = Record<string, unknown>;

  beforeEach(() => resetProgramDeclarations());

  async function checked(news: Props, olds: Props = {}, owner = OWNER): Promise<Props> {
    const r = await seedImageLifecycle.check(olds, { owner, ...news });
    expect(r.failures ?? []).toEqual([]);
    return r.inputs as Props;
  }
  /** Stored outputs of an image as written: the checked inputs and the image's hash. */
  async function stored(over: Props = {}): Promise<Props> {
    return { ...(await checked(base)), sha256: "a".repeat(64), providerVersion: "0.1.0", ...over };
  }

  it("fills the path in from the name, and owns the file there", async () => {
    const c = await checked(base);
    expect(c).toMatchObject({ path: IMG, sizeKiB: 1024, adopt: false });
    expect(await checked(base, c)).toEqual(c);
    expect(definition.artifacts!(seedImageSchema.parse({ ...base, path: c.path }))).toEqual([
      { type: "file", name: IMG, role: "seed image", property: "path" },
    ]);
  });

  it.each([
    ["the seed", { seed: { hostname: "m1b" } }, []],
    ["the size", { sizeKiB: 2048 }, []],
    ["allowedRoots", { allowedRoots: ["/var/lib/xen"] }, []],
    ["adopt", { adopt: true }, []],
    ["the credentials", { connection: { ...connection, user: "xen" } }, []],
    ["the path", { path: "/var/lib/xen/images/other-seed.img" }, ["path"]],
    ["the host", { connection: { ...connection, host: "dom0b" } }, ["connection"]],
  ])("a change of %s: rewritten in place unless the image moves", async (_what, change, replaces) => {
    const d = await seedImageLifecycle.diff(IMG, await stored(), await checked({ ...base, ...change }));
    expect(d).toEqual({ changes: true, replaces, deleteBeforeReplace: replaces.length > 0 });
  });

  it("plans nothing for an image as written", async () => {
    expect(await seedImageLifecycle.diff(IMG, await stored(), await checked(base))).toEqual({
      changes: false,
    });
  });

  it("diffs a seed not known yet at preview as an in-place change, unless the path moves", async () => {
    const olds = await checked(base);
    const preview = async (news: Props) => {
      const r = await seedImageLifecycle.check(olds, { owner: OWNER, ...news });
      expect(r.failures ?? []).toEqual([]);
      return seedImageLifecycle.diff(IMG, await stored(), r.inputs as Props);
    };
    expect(await preview({ ...base, seed: UNKNOWN })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(await preview({ ...base, seed: { hostname: UNKNOWN } })).toMatchObject({ replaces: [] });
    expect(
      await preview({ ...base, seed: UNKNOWN, path: "/var/lib/xen/images/other-seed.img" }),
    ).toMatchObject({ changes: true, replaces: ["path"] });
    expect(await preview({ ...base, seed: UNKNOWN, path: UNKNOWN })).toMatchObject({ replaces: ["path"] });
  });

  it("repairs an image missing or altered on the host in place (drift on path)", async () => {
    for (const what of ["missing", "changed"] as const) {
      const olds = await stored({ path: driftMarker(IMG, what) });
      expect(await seedImageLifecycle.diff(IMG, olds, await checked(base))).toEqual({
        changes: true,
        replaces: [],
        deleteBeforeReplace: false,
      });
      // Checked again from the refreshed inputs, the declared path stays.
      expect((await checked(base, { ...(await checked(base)), path: driftMarker(IMG, what) })).path).toBe(
        IMG,
      );
    }
  });

  it("tells a missing or altered image from the one written", () => {
    const sha = "a".repeat(64);
    expect(seedDrift(undefined, sha)).toBe("missing");
    expect(seedDrift({ exists: false }, sha)).toBe("missing");
    expect(seedDrift({ exists: true, sha256: "b".repeat(64) }, sha)).toBe("changed");
    expect(seedDrift({ exists: true, sizeBytes: 1 }, sha)).toBe("changed");
    expect(seedDrift({ exists: true, sha256: sha }, sha)).toBeUndefined();
  });

  it("refuses two seed images of one program on one path, naming the other", async () => {
    await checked(base);
    const r = await seedImageLifecycle.check(
      {},
      { owner: "p/s SeedImage m1b-seed", ...base, name: "m1", path: IMG },
    );
    expect(r.failures).toEqual([
      {
        property: "path",
        reason: `${IMG} on dom0:22 is also declared by ${OWNER} (its seed image); give each resource its own`,
      },
    ]);
    // Another host, another file.
    await checked({ ...base, connection: { ...connection, host: "dom0b" } }, {}, "p/s SeedImage m1-seed-b");
  });

  it("refuses a seed image on a vTPM's key image declared in the same program", async () => {
    const image = "/var/lib/xen/images/web1-vtpm.img";
    declareInProgram("dom0:22", "p/s Vtpm web1-vtpm", [
      { key: `file:${image}`, role: "vTPM key image", property: "imagePath" },
    ]);
    const r = await seedImageLifecycle.check({}, { owner: OWNER, ...base, path: image });
    expect(r.failures).toEqual([
      {
        property: "path",
        reason: `${image} on dom0:22 is also declared by p/s Vtpm web1-vtpm (its vTPM key image); give each resource its own`,
      },
    ]);
  });
});
