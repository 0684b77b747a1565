/**
 * The NoCloud seed image: a small FAT file system labelled `cidata` holding the seed files, made
 * where Pulumi runs with dosfstools and mtools (no mount, no root, no qemu-nbd). Built to be
 * byte-for-byte reproducible where the tools allow it, so that an unchanged seed hashes the same.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

/** NoCloud looks for a file system with this label (cloud-init accepts CIDATA too). */
export const SEED_LABEL = "cidata";
/** Volume serial used when mkfs.vfat has no --invariant (which fixes it and the timestamps). */
const VOLUME_ID = "7cda7a00";
/** mcopy -m keeps the source's mtime: a fixed one keeps the directory entries stable. */
const FIXED_MTIME = new Date("2000-01-01T00:00:00Z");

const INSTALL_HINT =
  "install dosfstools and mtools on the machine that runs pulumi (e.g. apt-get install dosfstools mtools) to build cloud-init seed images";

/** A file name in the image's root directory. */
const SEED_FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface Run {
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** Runs a local tool with an argv (no shell), with stdin closed so mtools can never prompt. */
function run(file: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { encoding: "buffer", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, MTOOLS_SKIP_CHECK: "1" } },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          return reject(new Error(`${file} was not found: ${INSTALL_HINT}`));
        }
        const detail = stderr.toString("utf8").trim() || err.message;
        reject(new Error(`${file} ${args.join(" ")} failed: ${detail}`));
      },
    );
    child.stdin?.end();
  });
}

let invariantSupported: Promise<boolean> | undefined;

/** mkfs.fat >= 4.2 has --invariant; older ones reject it, so ask once (its usage goes to stderr). */
function mkfsHasInvariant(): Promise<boolean> {
  invariantSupported ??= run("mkfs.vfat", ["--help"]).then(
    (r) => Buffer.concat([r.stdout, r.stderr]).toString("utf8").includes("--invariant"),
    // Older versions print usage to stderr and exit non-zero; a missing tool fails again below.
    (e: Error) => {
      if (!/was not found/.test(e.message)) return /--invariant/.test(e.message);
      // Asked again next time: the operator may install dosfstools while the program runs.
      invariantSupported = undefined;
      throw e;
    },
  );
  return invariantSupported;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  // mkdtemp makes the directory 0700: the seed holds private keys.
  const dir = await mkdtemp(path.join(os.tmpdir(), "tvd-seed-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A FAT image of `sizeKiB` KiB labelled `cidata`, holding `files` in its root directory. The
 * files are copied in name order with fixed timestamps, so equal files give an equal image.
 */
export async function buildSeedImage(
  files: Readonly<Record<string, string | Buffer>>,
  sizeKiB = 1024,
): Promise<Buffer> {
  if (!Number.isInteger(sizeKiB) || sizeKiB < 64 || sizeKiB > 65536)
    throw new Error(`seed image size must be a whole number of KiB from 64 to 65536, got ${sizeKiB}`);
  const names = Object.keys(files).sort();
  for (const name of names) {
    if (!SEED_FILE_NAME.test(name))
      throw new Error(`seed file name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-'`);
  }
  const invariant = await mkfsHasInvariant();
  return withTempDir(async (dir) => {
    const image = path.join(dir, "seed.img");
    const content = path.join(dir, "files");
    await mkdir(content, { mode: 0o700 });
    const sources: string[] = [];
    for (const name of names) {
      const source = path.join(content, name);
      await writeFile(source, files[name], { mode: 0o600 });
      await utimes(source, FIXED_MTIME, FIXED_MTIME);
      sources.push(source);
    }
    const mkfs = ["-n", SEED_LABEL, "-i", VOLUME_ID, ...(invariant ? ["--invariant"] : []), "-C", image];
    await run("mkfs.vfat", [...mkfs, String(sizeKiB)]);
    if (sources.length) {
      try {
        await run("mcopy", ["-i", image, "-m", "-D", "o", ...sources, "::/"]);
      } catch (e) {
        if (/disk full|no free clusters/i.test((e as Error).message))
          throw new Error(
            `the seed files do not fit in ${sizeKiB} KiB: raise sizeKiB or make extraFiles smaller`,
          );
        throw e;
      }
    }
    return readFile(image);
  });
}

/** One file of a seed image (a Buffer or a local path), as mtools reads it back. */
export async function readSeedFile(image: Buffer | string, name: string): Promise<string> {
  if (!SEED_FILE_NAME.test(name)) throw new Error(`invalid seed file name ${JSON.stringify(name)}`);
  const read = (file: string) =>
    run("mcopy", ["-i", file, `::${name}`, "-"]).then((r) => r.stdout.toString("utf8"));
  if (typeof image === "string") return read(image);
  return withTempDir(async (dir) => {
    const file = path.join(dir, "seed.img");
    await writeFile(file, image, { mode: 0o600 });
    return read(file);
  });
}
