import { spawnSync } from "node:child_process";
import { joinArgv, quoteArg } from "../../provider/transport/quote";
import { HOSTILE } from "../support/hostile";

describe("quoteArg", () => {
  it.each(HOSTILE.map((s) => [JSON.stringify(s), s]))(
    "%s reaches a POSIX shell as one literal argument",
    (_, s) => {
      // printf prints each argument NUL-terminated, so the split shows argument boundaries.
      const r = spawnSync("/bin/sh", ["-c", `printf '%s\\0' ${quoteArg(s)}`], { encoding: "utf8" });
      expect(r.status).toBe(0);
      expect(r.stdout.split("\0").slice(0, -1)).toEqual([s]);
    },
  );

  it("keeps argv boundaries when joining", () => {
    const argv = ["printf", "%s\\0", ...HOSTILE];
    const r = spawnSync("/bin/sh", ["-c", joinArgv(argv)], { encoding: "utf8" });
    expect(r.stdout.split("\0").slice(0, -1)).toEqual(HOSTILE);
  });

  it("refuses a NUL byte, which no remote argv can carry", () => {
    expect(() => quoteArg("a\0b")).toThrow(/NUL byte/);
  });

  it("refuses an empty command", () => {
    expect(() => joinArgv([])).toThrow(/empty command/);
  });
});
