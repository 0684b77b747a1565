import { z } from "zod";

/** One bad input property, named by its path (e.g. `connection.port`), with the reason and the fix. */
export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

/** Thrown when inputs are rejected before any host is touched; lists every failure at once. */
export class InputValidationError extends Error {
  constructor(
    readonly resource: string,
    readonly failures: readonly CheckFailure[],
  ) {
    super(`invalid ${resource} inputs:\n${failures.map((f) => `  - ${f.property}: ${f.reason}`).join("\n")}`);
    this.name = "InputValidationError";
  }
}

/** Validates `value` against `schema`, returning the parsed value or every failure with its property path. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
): { ok: true; value: z.output<S> } | { ok: false; failures: CheckFailure[] } {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    failures: result.error.issues.map((issue) => ({
      property: issue.path.length ? issue.path.join(".") : "(inputs)",
      reason: issue.message,
    })),
  };
}

/** An absolute POSIX path without `..` components, so that allowed-root checks cannot be escaped. */
export const absolutePath = z
  .string()
  .refine((p) => p.startsWith("/"), { message: "must be an absolute path (start with /)" })
  .refine((p) => !p.split("/").includes(".."), { message: "must not contain '..' components" })
  .refine((p) => !/\p{Cc}/u.test(p), {
    message: "must not contain NUL or newline characters, or any other control character",
  });
