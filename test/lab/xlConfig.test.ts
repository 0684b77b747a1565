/** Every golden config is read identically by Xen's own parser (libxlutil) and by ours. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { parseXlConfig } from "../../provider/xl/config";
import { goldenConfigs } from "../support/xlGolden";

const xlcfg = path.join(__dirname, "..", "..", "build", "lab", "bin", "xlcfg");
const fixtures = path.join(__dirname, "..", "fixtures", "xl");

it.each(Object.keys(goldenConfigs))("libxlutil reads %s as parseXlConfig does", (file) => {
  const ours = parseXlConfig(readFileSync(path.join(fixtures, file), "utf8"));
  const r = spawnSync(xlcfg, ["config", path.join(fixtures, file), ...ours.keys()], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const xen = JSON.parse(r.stdout) as Record<string, string | string[]>;
  for (const [key, value] of ours) {
    expect(xen[key]).toEqual(Array.isArray(value) ? value : String(value));
  }
});

it.each(Object.keys(goldenConfigs))("libxlutil accepts every disk spec of %s", (file) => {
  const disks = (parseXlConfig(readFileSync(path.join(fixtures, file), "utf8")).get("disk") ??
    []) as string[];
  for (const spec of disks) {
    const r = spawnSync(xlcfg, ["disk", spec], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).pdev_path).toBe(
      spec.startsWith("file:") ? spec.slice(5).split(",")[0] : spec.split("target=")[1],
    );
  }
});
