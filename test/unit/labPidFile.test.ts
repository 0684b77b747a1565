/**
 * lab/host.ts readPid: a lab host's pid files. stopHost signals every process in the host's
 * namespace and then reads sshd.pid, which sshd removes as it exits: a missing file is a process
 * already gone (stop 26's CI failed on that race in ownership.test.ts's teardown), while any other
 * error still surfaces.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { readPid } from "../../lab/host";

describe("readPid", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "tvd-pidfile-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads the pid a daemon wrote", () => {
    writeFileSync(path.join(dir, "ok.pid"), "4242\n");
    expect(readPid(path.join(dir, "ok.pid"))).toBe(4242);
  });

  it("is undefined for a file that is not there (removed by its exiting daemon)", () => {
    expect(readPid(path.join(dir, "gone.pid"))).toBeUndefined();
  });

  it.each([[""], ["\n"], ["abc\n"], ["-3\n"], ["0\n"], ["12.5\n"]])(
    "is undefined for a file holding %j (a daemon still writing it)",
    (text) => {
      writeFileSync(path.join(dir, "partial.pid"), text);
      expect(readPid(path.join(dir, "partial.pid"))).toBeUndefined();
    },
  );

  it("still throws for an error other than a missing file", () => {
    mkdirSync(path.join(dir, "adir.pid"));
    expect(() => readPid(path.join(dir, "adir.pid"))).toThrow(/EISDIR/);
  });
});
