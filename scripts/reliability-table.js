#!/usr/bin/env node
// Rewrites README.md's reliability table from bench/results/reliability.json (issue 12): the
// figures as the last test run or `npm run bench:reliability` wrote them.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const results = JSON.parse(fs.readFileSync(path.join(root, "bench/results/reliability.json"), "utf8"));
const START =
  "<!-- reliability: generated from bench/results/reliability.json by scripts/reliability-table.js -->";
const END = "<!-- /reliability -->";
const TITLES = {
  faults: "Faults injected at every remote step",
  reboot: "dom0 rebooted during an up",
  concurrency: "Concurrent runs on one dom0",
  hostile: "Hostile input, generated",
  secrets: "Secrets in plaintext",
};
const words = (k) => k.replace(/([A-Z])/g, " $1").toLowerCase();
const rows = [];
for (const [section, rec] of Object.entries(results.sections)) {
  const figures = Object.entries(rec.figures)
    .map(([k, v]) => `${words(k)}: **${v}**`)
    .join(", ");
  rows.push(`| ${TITLES[section] ?? section} | ${rec.scope} | ${rec.at.slice(0, 10)} | ${figures} |`);
}
const table = [
  START,
  "",
  "| what | run | date | figures |",
  "| --- | --- | --- | --- |",
  ...rows,
  "",
  END,
].join("\n");
const readmePath = path.join(root, "README.md");
const readme = fs.readFileSync(readmePath, "utf8");
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < 0) {
  console.error(`README.md has no ${START} ... ${END} block`);
  process.exit(1);
}
fs.writeFileSync(readmePath, readme.slice(0, a) + table + readme.slice(b + END.length));
console.log(`README.md: reliability table from ${Object.keys(results.sections).length} sections`);
