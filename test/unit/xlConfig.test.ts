import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { diffXlConfigs, parseXlConfig, renderXlConfig, XlConfigSyntaxError } from "../../provider/xl/config";
import { goldenConfigs } from "../support/xlGolden";

const goldenDir = path.join(__dirname, "..", "fixtures", "xl");

describe("golden xl configs", () => {
  it.each(Object.keys(goldenConfigs))("%s renders exactly as the golden file", (file) => {
    const text = renderXlConfig(goldenConfigs[file], "written by pulumi-tvd");
    if (process.env.UPDATE_GOLDEN) writeFileSync(path.join(goldenDir, file), text);
    expect(text).toBe(readFileSync(path.join(goldenDir, file), "utf8"));
  });

  it.each(Object.keys(goldenConfigs))("%s parses back to what was rendered", (file) => {
    const parsed = parseXlConfig(renderXlConfig(goldenConfigs[file]));
    expect(diffXlConfigs(parsed, new Map(goldenConfigs[file]))).toEqual([]);
  });
});

describe("parseXlConfig reads what libxlutil reads", () => {
  it.each([
    ['name="a"\nmemory=16\n', { name: "a", memory: 16 }],
    ["name = 'single' ; memory = 0x10 # hex\n", { name: "single", memory: 16 }],
    ['disk = [ "a",\n  "b", ]\n', { disk: ["a", "b"] }],
    ['name="a\\"b\\\\c"\n', { name: 'a"b\\c' }],
    ["# only a comment\n\n", {}],
    ['name="last"\nname="wins"', { name: "wins" }],
  ])("%j", (text, expected) => {
    expect(Object.fromEntries(parseXlConfig(text))).toEqual(expected);
  });

  it.each([
    ['name="x" memory=16\n', /line 1: unexpected "m"/],
    ['name="open\n', /line 1: unterminated string/],
    ["\n\nmemory 16\n", /line 3: expected '=' after memory/],
    ['disk=["a" "b"]\n', /expected ',' or '\]'/],
  ])("rejects %j", (text, message) => {
    expect(() => parseXlConfig(text)).toThrow(XlConfigSyntaxError);
    expect(() => parseXlConfig(text)).toThrow(message);
  });
});

describe("diffXlConfigs", () => {
  it("ignores order, spacing, comments and quoting; names what differs", () => {
    const a = parseXlConfig('name="web1"\nmemory=256\nvif=["bridge=xenbr0"]\n');
    const b = parseXlConfig("# edited\nmemory = '256'\nname='web1'\nvif=['bridge=xenbr1']\nvcpus=2\n");
    expect(diffXlConfigs(a, b)).toEqual(["vcpus", "vif"]);
  });
});

describe("renderXlConfig", () => {
  it("refuses control characters instead of writing a broken config", () => {
    expect(() => renderXlConfig([["name", "a\nb"]])).toThrow(/control character/);
  });
  it("escapes quotes and backslashes", () => {
    expect(renderXlConfig([["extra", 'a"b\\c']])).toBe('extra = "a\\"b\\\\c"\n');
  });
});
