/**
 * Seven projects: pure unit tests; the team-package example's tests; provider/tpm against swtpm; TVD diagrams in headless chromium; tests against the local lab;
 * end-to-end tests that drive the real Pulumi CLI; and the same against real Xen under QEMU.
 */
// tsconfig.json sets isolatedModules, so ts-jest transpiles each file on its own instead of
// type-checking it in a language service per worker (about 2.5 s of CPU per test file, cold).
// Types are checked once, for the whole project, by `npm run lint` (tsc --noEmit).
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json" }];

/** @type {import('jest').Config} */
module.exports = {
  reporters: ["default", "<rootDir>/test/summary-reporter.js"],
  // The real-Xen files first, then the longest first (scripts/test runs files in parallel workers).
  testSequencer: "<rootDir>/test/sequencer.js",
  projects: [
    {
      displayName: "unit",
      testMatch: ["<rootDir>/test/unit/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testEnvironment: "node",
    },
    {
      // examples/team-package's own tests (a team's construct package on pulumi-tvd), under
      // Pulumi's mocks, on this checkout's pulumi-tvd rather than its built dist/. No lab.
      displayName: "team-package",
      testMatch: ["<rootDir>/examples/team-package/test/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      moduleNameMapper: { "^pulumi-tvd$": "<rootDir>/index.ts" },
      testEnvironment: "node",
    },
    {
      // provider/tpm against real TPMs: swtpm (1.2 and 2.0) in temporary directories, tpm2-tools,
      // and the member agent when agent/bin/tvd-agent is built. No lab.
      displayName: "tpm",
      testMatch: ["<rootDir>/test/tpm/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testEnvironment: "node",
    },
    {
      // The TVD diagrams in Debian's headless chromium (puppeteer-core): the SVGs the README
      // shows, and Mermaid's own parser on hostile names. No lab.
      displayName: "browser",
      testMatch: ["<rootDir>/test/browser/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testEnvironment: "node",
    },
    {
      displayName: "lab",
      testMatch: ["<rootDir>/test/lab/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testEnvironment: "node",
      globalSetup: "<rootDir>/test/lab/global-setup.ts",
    },
    {
      displayName: "e2e",
      testMatch: ["<rootDir>/test/e2e/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testEnvironment: "node",
      globalSetup: "<rootDir>/test/e2e/global-setup.ts",
      slowTestThreshold: 120,
    },
    {
      // Real Xen 4.17 under QEMU (lab/xen): the conformance suite and the example, live.
      displayName: "xen",
      testMatch: ["<rootDir>/test/xen/**/*.test.ts"],
      transform: { "^.+\\.ts$": tsJest },
      testEnvironment: "node",
      globalSetup: "<rootDir>/test/xen/global-setup.ts",
      globalTeardown: "<rootDir>/test/xen/global-teardown.ts",
      slowTestThreshold: 300,
    },
  ],
};
