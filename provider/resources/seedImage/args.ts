import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { z } from "zod";
import { SEED_PATHS, type MemberSeed } from "../../cloudinit/render";
import { checkPathsUnderRoots, domainName } from "../../names";
import { connectionSchema } from "../../transport/connection";
import { absolutePath } from "../../validation";

/** One line of text: it becomes one line of a config file in the guest. */
const oneLine = (what: string) =>
  z
    .string()
    .min(1, `must not be empty: give ${what}`)
    .regex(/^[^\p{Cc}]*$/u, "must be one line, without control characters");

/** An RFC 1123 host name label. */
const hostLabel = z
  .string()
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/,
    "must be a host name of 1 to 63 letters, digits and '-', not starting or ending with '-'",
  );

const fqdn = z
  .string()
  .max(253, "must be at most 253 characters")
  .refine((n) => n.split(".").length >= 2 && n.split(".").every((l) => hostLabel.safeParse(l).success), {
    message: "must be a fully qualified domain name such as m1.tvd.example",
  });

const ipAddress = z.string().refine((a) => isIP(a) !== 0, { message: "must be an IPv4 or IPv6 address" });

const cidr = z.string().refine(
  (a) => {
    const [ip, prefix, ...rest] = a.split("/");
    const max = isIP(ip ?? "") === 4 ? 32 : isIP(ip ?? "") === 6 ? 128 : -1;
    return rest.length === 0 && /^\d{1,3}$/.test(prefix ?? "") && Number(prefix) <= max;
  },
  { message: "must be an address with its prefix length, such as 10.50.0.11/24" },
);

const network = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("dhcp") }),
  z.strictObject({
    kind: z.literal("static"),
    address: cidr,
    /** @default - no default route */
    gateway: ipAddress.optional(),
    /** @default - no name servers */
    dns: z.array(ipAddress).optional(),
  }),
]);

const pem = (label: string) =>
  z.string().refine((p) => new RegExp(`-----BEGIN ${label}-----[\\s\\S]+-----END ${label}-----`).test(p), {
    message: `must be PEM text with a ${label.replace(/\[.*?\]\*/, "").trim()} block (the content, not a path)`,
  });

const sshHostKey = z.strictObject({
  privateKey: z.string().refine((k) => /-----BEGIN (OPENSSH )?PRIVATE KEY-----/.test(k), {
    message: "must be an OpenSSH private key (the file's content, not its path)",
  }),
  publicKey: oneLine("the ed25519 public key").regex(/^ssh-ed25519 /, "must be an ssh-ed25519 public key"),
  certificate: oneLine("the host certificate").regex(
    /^ssh-ed25519-cert-v01@openssh\.com /,
    "must be an ssh-ed25519-cert-v01@openssh.com certificate (ssh-keygen -s ... -h)",
  ),
});

/** A TPM auth value: 32 random bytes as 64 lowercase hex digits (a MemberIdentity's tpmOwnerAuth). */
const tpmAuth = z
  .string()
  .regex(
    /^[0-9a-f]{64}$/,
    "must be 64 lowercase hex digits (32 bytes): pass a MemberIdentity's tpmOwnerAuth or tpmSrkAuth",
  );

const extraFile = z.strictObject({
  path: absolutePath,
  content: z.string(),
  /** @default "0644" */
  permissions: z
    .string()
    .regex(/^0[0-7]{3}$/, "must be an octal mode such as 0644")
    .default("0644"),
  /** @default - root:root */
  owner: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*(:[a-z_][a-z0-9_-]*)?$/, "must be user or user:group")
    .optional(),
});

/** The guest side of the seed: what cloud-init sets up in the member at first boot. */
export const seedSchema = z.strictObject({
  /** @default - "<name>-<12 hex digits of the seed's hash>": a new seed is a new cloud-init instance */
  instanceId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, "must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
    .optional(),
  hostname: hostLabel,
  /** @default - none */
  fqdn: fqdn.optional(),
  /** @default - { kind: "dhcp" } */
  network: network.default({ kind: "dhcp" }),
  /** @default - the interface is matched by its name */
  macAddress: z
    .string()
    .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/, "must be a lowercase MAC address such as 00:16:3e:00:00:01")
    .optional(),
  /** @default - "eth0" */
  interfaceName: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,15}$/, "must be an interface name of 1 to 15 letters, digits, '_', '.' or '-'")
    .default("eth0"),
  /** @default - cloud-init generates the host keys */
  sshHostKey: sshHostKey.optional(),
  /** @default - [] */
  sshAuthorizedKeys: z.array(oneLine("an authorized key")).default([]),
  /** @default - [] */
  sshCaPublicKeys: z.array(oneLine("the CA's public key")).default([]),
  /** @default - none */
  x509: z
    .strictObject({
      certPem: pem("CERTIFICATE"),
      keyPem: pem("[A-Z ]*PRIVATE KEY"),
      caCertPem: pem("CERTIFICATE"),
    })
    .optional(),
  /**
   * The member agent (agent/PROTOCOL.md): the seed installs it and hands it these TPM auth
   * values, with which it takes ownership of the member's vTPM. Secrets (the whole seed is).
   * @default - no agent
   */
  agent: z
    .strictObject({
      ownerAuth: tpmAuth,
      srkAuth: tpmAuth,
    })
    .optional(),
  /** @default - [] */
  extraFiles: z.array(extraFile).default([]),
});

const RESERVED_PATHS: readonly string[] = Object.values(SEED_PATHS);

function checkExtraFiles(seed: z.output<typeof seedSchema>, ctx: z.RefinementCtx): void {
  const first = new Map<string, number>();
  seed.extraFiles.forEach((f, i) => {
    const path = ["extraFiles", i, "path"];
    if (RESERVED_PATHS.includes(f.path))
      ctx.addIssue({
        code: "custom",
        path,
        message: `${f.path} is written by the seed itself; choose another path`,
      });
    const at = first.get(f.path);
    if (at === undefined) first.set(f.path, i);
    else ctx.addIssue({ code: "custom", path, message: `${f.path} is already extraFiles[${at}]'s path` });
  });
}

/**
 * SeedImage inputs. The image is derived data: it is rebuilt whenever the seed changes and written
 * over the old one in place, so the guest keeps its disk path; but only over a file it owns.
 */
const seedImageShape = z.strictObject({
  connection: connectionSchema,
  /** The member (the guest domain) the seed is for; the image is locked by this name. */
  name: domainName,
  /** @default - /var/lib/xen/images/<name>-seed.img */
  path: absolutePath.optional(),
  /** @default - ["/var/lib/xen", "/etc/xen"] */
  allowedRoots: z.array(absolutePath).min(1).default(["/var/lib/xen", "/etc/xen"]),
  /** @default - 1024 */
  sizeKiB: z
    .number()
    .int("must be a whole number of KiB")
    .min(64, "must be at least 64 KiB")
    .max(65536, "must be at most 65536 KiB")
    .default(1024),
  seed: seedSchema.superRefine(checkExtraFiles),
  /**
   * Take over a file at `path` that pulumi-tvd did not make (it has no ownership record); a file
   * another resource owns (a vTPM's key image) is refused whatever this says.
   * @default false
   */
  adopt: z.boolean().default(false),
});

export function seedPathOf(v: { path?: string; name: string }): string {
  return v.path ?? `/var/lib/xen/images/${v.name}-seed.img`;
}

/** Inputs kept as secrets: the seed carries the member's private keys. */
export const SEED_SECRETS = ["seed"] as const;

export const seedImageSchema = seedImageShape.superRefine(
  (v: Partial<Record<keyof z.input<typeof seedImageShape>, unknown>>, ctx) => {
    const name = domainName.safeParse(v.name).success ? (v.name as string) : undefined;
    const path = typeof v.path === "string" ? v.path : name ? seedPathOf({ name }) : undefined;
    checkPathsUnderRoots(v.allowedRoots, { path }, ctx);
  },
  { when: () => true },
);

export type SeedImageInputs = z.output<typeof seedImageSchema>;

/**
 * What the renderer takes. An unset instance id follows the seed's content, so that a changed
 * seed (rotated certificates) is a new instance to cloud-init and applied at the next boot.
 */
export function memberSeedOf(v: SeedImageInputs): MemberSeed {
  const { instanceId, ...rest } = v.seed;
  const digest = createHash("sha256").update(JSON.stringify(rest)).digest("hex").slice(0, 12);
  return { ...rest, instanceId: instanceId ?? `${v.name}-${digest}` };
}
