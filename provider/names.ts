/**
 * Validation of the names, paths and sizes every resource takes, shared by all of them. A value
 * that passes is safe to put into an xl config, a disk spec, a lock name and a remote argv.
 */
import { z } from "zod";
import { absolutePath } from "./validation";

/**
 * xl domain names: libxl accepts almost anything, but a name also becomes a xenstore key, a
 * file name under /etc/xen and /var/log/xen, and a lock name. Letters, digits, '.', '_', '-',
 * starting with a letter or digit, at most 64 characters.
 */
export const domainName = z
  .string()
  .min(1, "must not be empty")
  .max(64, "must be at most 64 characters")
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    "must start with a letter or digit and hold only letters, digits, '.', '_' and '-' (it becomes a file name and a xenstore key)",
  )
  .refine((n) => n !== "Domain-0", { message: "Domain-0 is dom0 itself; choose another name" });

/** Characters a path may hold and still be safe inside an xl disk spec (no ',', '=', quotes). */
const PATH_CHARS = /^[A-Za-z0-9_./+@-]+$/;

/** An absolute path safe to write into an xl config or disk spec, for paths that are only read. */
export const safePath = absolutePath.refine((p) => PATH_CHARS.test(p), {
  message: "may hold only letters, digits and '_', '.', '/', '+', '@', '-' (it goes into an xl disk spec)",
});

/**
 * An absolute path under one of `roots`. Paths are where pulumi-tvd writes, so they are kept
 * inside the directories the operator allowed.
 */
export function pathUnder(roots: readonly string[]) {
  return safePath.refine((p) => roots.some((r) => p.startsWith(r.endsWith("/") ? r : `${r}/`)), {
    message: `must be under ${roots.join(" or ")} (set allowedRoots to permit another directory)`,
  });
}

/**
 * A refinement step: every path pulumi-tvd will write, keyed by the property it is reported
 * on, sits under `roots`. Schemas run it even when other properties failed (check reports every
 * failure at once), so it skips what is not well-formed: bad roots are reported as allowedRoots,
 * and a path left undefined (derived from a bad name) is reported as that name.
 */
export function checkPathsUnderRoots(
  roots: unknown,
  paths: Readonly<Record<string, string | undefined>>,
  ctx: z.RefinementCtx,
): void {
  if (!Array.isArray(roots) || !roots.every((r) => typeof r === "string")) return;
  const under = pathUnder(roots);
  for (const [property, p] of Object.entries(paths)) {
    if (p === undefined) continue;
    const r = under.safeParse(p);
    if (!r.success)
      ctx.addIssue({ code: "custom", path: [property], message: `${p}: ${r.error.issues[0].message}` });
  }
}

/** A size in MiB: a whole number from 1 to `max`. */
export function sizeMiB(max: number) {
  return z
    .number()
    .int("must be a whole number of MiB")
    .min(1, "must be at least 1 MiB")
    .max(max, `must be at most ${max} MiB`);
}

/** A vTPM UUID as uuidgen writes it. */
export const vtpmUuid = z
  .string()
  .regex(
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    "must be a lowercase UUID such as ac0a5b9e-cbe2-4c07-b43b-1d69e46fb839 (leave it unset to generate one)",
  );
