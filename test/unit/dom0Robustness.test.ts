/**
 * Issue 11's findings in the dom0 and transport layers, the pure parts: each test is named after
 * the finding it fixes. Their host behaviour is tested in test/lab/dom0Robustness.test.ts.
 */
import { parseInspection, parseXlListLong } from "../../provider/dom0/inspect";
import { qcow2Head } from "../support/qcow2Head";
import { checkOf } from "../../provider/core/define";
import { definition as guestDefinition } from "../../provider/resources/guest/provider";
import { definition as vtpmDefinition } from "../../provider/resources/vtpm/provider";
import { definition as managerDefinition } from "../../provider/resources/vtpmManager/provider";

const definitionOf = (schema: unknown) =>
  new Map<unknown, Parameters<typeof checkOf>[0]>([
    [vtpmManagerSchema, managerDefinition as never],
    [vtpmSchema, vtpmDefinition as never],
    [guestSchema, guestDefinition as never],
  ]).get(schema)!;
/** The kind's own check, as the engine calls it. */
const checkInputs = (schema: unknown, news: Record<string, unknown>) =>
  checkOf(definitionOf(schema))({}, news);
import { guestSchema } from "../../provider/resources/guest/args";
import { vtpmSchema } from "../../provider/resources/vtpm/args";
import { vtpmManagerSchema } from "../../provider/resources/vtpmManager/args";
import { connectionSchema } from "../../provider/transport/connection";
import { redactSecrets, RemoteCommandError } from "../../provider/transport/errors";
import { remoteCommand } from "../../provider/transport/ssh";

const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "10.0.0.5", privateKey: key, hostKeyFingerprint: "SHA256:" + "a".repeat(43) };

describe("a command that times out locally goes on on dom0 and links its file afterwards", () => {
  it("runs every remote command under timeout(1), which kills its process group with SIGKILL", () => {
    expect(remoteCommand(300, ["sh", "-c", 'ln -- "$1" x', "pulumi-tvd", "a'b"])).toBe(
      `'timeout' '-s' 'KILL' '300' 'sh' '-c' 'ln -- "$1" x' 'pulumi-tvd' 'a'\\''b'`,
    );
    expect(remoteCommand(0.5, ["true"])).toBe(`'timeout' '-s' 'KILL' '0.5' 'true'`);
  });

  it("refuses an empty command and a limit that is not positive", () => {
    expect(() => remoteCommand(5, [])).toThrow(/empty command/);
    expect(() => remoteCommand(0, ["true"])).toThrow(/must be positive/);
  });
});

describe("`xl list -l ... 2>&1` breaks on a libxl warning", () => {
  const warning = "libxl: warning: libxl_utils.c:1:x: something libxl says";
  const vtpms = [{ backend_domname: "vtpmmgr", devid: 0, uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839" }];
  const domain = [{ domid: 7, config: { c_info: { name: "i1" }, vtpms } }];

  it("parses xl's stdout only, whatever libxl printed on stderr", () => {
    // The host's `xl list -l` is parsed from its stdout alone (Dom0.inspect), its stderr apart.
    const list = parseXlListLong(JSON.stringify(domain), warning, "xl list -l");
    const stdout = [
      // A stray key (a stderr some version printed) is ignored.
      "size:/var/lib/xen/images/g.qcow2\t196616",
      `qcow2:/var/lib/xen/images/g.qcow2\t${qcow2Head("/b.raw").toString("base64")}`,
      "qcow2-stderr:/var/lib/xen/images/g.qcow2\thead: warning: something",
    ].join("\n");
    const r = parseInspection("i1", stdout, list);
    expect(r.domain).toEqual({
      running: true,
      domid: 7,
      config: domain[0].config,
      vtpms: [{ devid: 0, backend: "vtpmmgr", uuid: "ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839" }],
      usedBy: [],
    });
    expect(r.files["/var/lib/xen/images/g.qcow2"]).toEqual({
      exists: true,
      sizeBytes: 196616,
      qcow2: { format: "qcow2", backingFile: "/b.raw" },
    });
  });

  it("names the command and what xl printed when stdout is not JSON, secrets redacted", () => {
    expect(() =>
      parseXlListLong('[{"cmdline": "owner_auth=0123abcd"', "libxl: error: oops", "xl list -l mgr"),
    ).toThrow(
      /cannot read the output of `xl list -l mgr` \(expected a JSON array\):\n {4}\[\{"cmdline": "owner_auth=\*\*\*"\n {2}xl's stderr:\n {4}libxl: error: oops/,
    );
    expect(parseXlListLong("", "", "xl list -l")).toEqual([]);
  });
});

describe("a fractional `readyTimeoutSec` passes `check` and breaks after `xl create`", () => {
  it.each([
    ["VtpmManager", "readyTimeoutSec", vtpmManagerSchema, { name: "vtpmmgr" }],
    ["Vtpm", "readyTimeoutSec", vtpmSchema, { name: "web1-vtpm", manager: "vtpmmgr" }],
    [
      "Guest",
      "vtpmReadyTimeoutSec",
      guestSchema,
      { name: "web1", baseImage: "/srv/debian.raw", kernel: "/usr/lib/xen/boot/vmlinuz" },
    ],
  ] as const)("%s: check rejects 1.5 naming %s and the fix", async (_, property, schema, inputs) => {
    const r = await checkInputs(schema, { connection, ...inputs, [property]: 1.5 });
    expect(r.failures).toEqual([
      { property, reason: "must be a whole number of seconds; got 1.5, use 2 instead" },
    ]);
    expect((await checkInputs(schema, { connection, ...inputs, [property]: 2 })).failures).toBeUndefined();
  });

  it.each(["connectTimeoutSec", "commandTimeoutSec"])(
    "connection: check rejects 1.5 for %s",
    async (property) => {
      const r = await checkInputs(vtpmManagerSchema, {
        connection: { ...connection, [property]: 1.5 },
        name: "vtpmmgr",
      });
      expect(r.failures).toEqual([
        {
          property: `connection.${property}`,
          reason: "must be a whole number of seconds; got 1.5, use 2 instead",
        },
      ]);
      expect(connectionSchema.parse({ ...connection, [property]: 30 })[property as "connectTimeoutSec"]).toBe(
        30,
      );
    },
  );
});

describe("a console tail in an error can carry `owner_auth=`", () => {
  it.each([
    [
      "a manager's command line",
      "extra=owner_auth=0a1b2c srk_auth=well-known tpm2=1",
      "extra=owner_auth=*** srk_auth=*** tpm2=1",
    ],
    [
      "xl list -l's JSON",
      '"cmdline": "owner_auth=0a1b2c,srk_auth=x"',
      '"cmdline": "owner_auth=***,srk_auth=***"',
    ],
    ["a quoted xl.cfg line", 'extra="owner_auth=0a1b2c"', 'extra="owner_auth=***"'],
    ["any *_auth key", "TPM_AUTH=s3cr3t endorsement_auth=x;", "TPM_AUTH=*** endorsement_auth=***;"],
    ["pass*= keys", "password=hunter2 passphrase='a b' PASSWD=y", "password=*** passphrase=*** PASSWD=***"],
    [
      "nothing secret",
      "loglevel=debug uuid=ac0a owner=root auth=none",
      "loglevel=debug uuid=ac0a owner=root auth=none",
    ],
  ])("redacts %s", (_, text, shown) => {
    expect(redactSecrets(text)).toBe(shown);
  });

  it("keeps secrets out of a failed command's message and its fields", () => {
    const e = new RemoteCommandError(
      "root@dom0:22",
      "xl create /etc/xen/vtpmmgr.cfg owner_auth=abc",
      3,
      "Parsing config\nconsole: INFO[VTPM]: cmdline owner_auth=0a1b2c srk_auth=0d0e\n",
    );
    expect(e.message).not.toMatch(/abc|0a1b2c|0d0e/);
    expect(e.message).toContain("owner_auth=*** srk_auth=***");
    expect(e.stderr).not.toContain("0a1b2c");
    expect(e.command).toBe("xl create /etc/xen/vtpmmgr.cfg owner_auth=***");
  });
});
