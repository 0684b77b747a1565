/** Two projects: pure unit tests, and end-to-end tests that drive the real Pulumi CLI. */
const tsJest = ["ts-jest", { tsconfig: "tsconfig.json" }];

/** @type {import('jest').Config} */
module.exports = {
  reporters: ["default", "<rootDir>/test/summary-reporter.js"],
  projects: [
    {
      displayName: "unit",
      testMatch: ["<rootDir>/test/unit/**/*.test.ts"],
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
  ],
};
