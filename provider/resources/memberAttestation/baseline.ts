/**
 * The baseline as code (issue 16.1): the PCR values a member must prove, computed where the
 * Pulumi program runs from the files the program declares (the kernel and initrd the user bakes
 * into the member image), exactly as pv-grub measures them (provider/tpm/pvgrub.ts), plus PCRs
 * pinned by value. It is a plain value of the program, known at preview: a changed kernel file,
 * initrd or command line shows as a changed baseline in `pulumi preview`, and nothing is ever
 * learned from a running member.
 */
import { readFileSync } from "node:fs";
import { PCR_SIZE, pvGrubMeasurements, replayPcrs, type PcrBank } from "../../tpm/pvgrub";

/** The menu.lst pv-grub reads when its command line names none (Xen's stubdom/grub/mini-os.c). */
export const PV_GRUB_DEFAULT_MENU_LST = "(hd0,0)/boot/grub/menu.lst";

/** PCRs of a TPM 1.2 and of a PC Client TPM 2.0: 0 to 23. */
export const PCR_COUNT = 24;

/** What a member must prove: one bank, and the expected value of each PCR in it. */
export interface PcrBaseline {
  readonly bank: PcrBank;
  /** Expected value per PCR index ("4", "5", ...), lowercase hex of the bank's size. */
  readonly pcrs: Readonly<Record<string, string>>;
  /**
   * What each PCR's value stands for, as errors name it ("kernel file ./boot/vmlinuz").
   * @default - none: errors give the values alone
   */
  readonly sources?: Readonly<Record<string, string>>;
}

export interface PvGrubBaselineArgs {
  /** The kernel file as stored on the member's boot disk (gzip or not), a path where Pulumi runs. */
  readonly kernel: string;
  /** The initrd file, likewise. @default - none: pv-grub then measures zero bytes into PCR 5 */
  readonly initrd?: string;
  /** The kernel command line exactly as the menu.lst's `kernel` line gives it after the file name. */
  readonly cmdline: string;
  /** @default "sha1" (the only bank of a TPM 1.2; a TPM 2.0 vTPM has it too) */
  readonly bank?: PcrBank;
  /** Further PCRs pinned by value: index to hex. @default - none */
  readonly pcrs?: Readonly<Record<string | number, string>>;
}

/** A baseline that cannot be computed: each problem names the property, the value and the fix. */
export class BaselineError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`measured boot baseline: ${problems.join("; ")}`);
    this.name = "BaselineError";
  }
}

const PV_GRUB_PCRS = ["4", "5"];

/** Why `index` is not a PCR index, or undefined. */
export function pcrIndexProblem(index: string): string | undefined {
  return /^(0|[1-9][0-9]?)$/.test(index) && Number(index) < PCR_COUNT
    ? undefined
    : `is not a PCR index: give a whole number from 0 to ${PCR_COUNT - 1}`;
}

/** Why `value` is not a PCR value of `bank`, or undefined. */
export function pcrValueProblem(value: unknown, bank: PcrBank): string | undefined {
  const size = PCR_SIZE[bank];
  return typeof value === "string" && new RegExp(`^[0-9a-f]{${2 * size}}$`).test(value)
    ? undefined
    : `is not a ${bank} PCR value: give ${2 * size} lowercase hex digits (${size} bytes)`;
}

function readDeclared(property: string, file: string, problems: string[]): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    problems.push(
      `${property} ${JSON.stringify(file)} cannot be read (${code}): give the path, where Pulumi runs, of the file ` +
        `the member image boots (relative paths are from the program's directory)`,
    );
    return undefined;
  }
}

/**
 * The PCRs a member booted by pv-grub must hold: PCR 4 from the kernel file's bytes, PCR 5 from
 * the command line and then the initrd (replayed from zero PCRs), and any PCR pinned by value.
 * Reads the files now, in the program; `property` prefixes every error (e.g. "measuredBoot").
 * Throws a BaselineError listing every problem.
 */
export function pvGrubBaseline(args: PvGrubBaselineArgs, property = "baseline"): PcrBaseline {
  const problems: string[] = [];
  const bank = args.bank ?? "sha1";
  if (bank !== "sha1" && bank !== "sha256") {
    problems.push(`${property}.bank ${JSON.stringify(bank)} is not a PCR bank: give "sha1" or "sha256"`);
  }
  if (typeof args.cmdline !== "string" || /[\p{Cc}]/u.test(args.cmdline)) {
    problems.push(
      `${property}.cmdline ${JSON.stringify(args.cmdline)} must be one line of text, the kernel's arguments as ` +
        `menu.lst's kernel line gives them after the file name`,
    );
  }
  const kernel = readDeclared(`${property}.kernel`, args.kernel, problems);
  const initrd =
    args.initrd === undefined ? undefined : readDeclared(`${property}.initrd`, args.initrd, problems);
  const pinned: Record<string, string> = {};
  for (const [index, value] of Object.entries(args.pcrs ?? {})) {
    const at = `${property}.pcrs[${JSON.stringify(index)}]`;
    const indexProblem = pcrIndexProblem(index);
    if (indexProblem) problems.push(`${at} ${indexProblem}`);
    else if (PV_GRUB_PCRS.includes(index))
      problems.push(
        `${at} is pv-grub's own PCR (4: the kernel, 5: cmdline and initrd), computed from the files declared: remove it`,
      );
    else if (bank === "sha1" || bank === "sha256") {
      const normal = typeof value === "string" ? value.toLowerCase() : value;
      const valueProblem = pcrValueProblem(normal, bank);
      if (valueProblem) problems.push(`${at} ${JSON.stringify(value)} ${valueProblem}`);
      else pinned[index] = normal as string;
    }
  }
  if (problems.length || !kernel) throw new BaselineError(problems);
  const replayed = replayPcrs(pvGrubMeasurements({ kernel, cmdline: args.cmdline, initrd }, bank), bank);
  const initrdSource = args.initrd === undefined ? "no initrd" : `initrd file ${args.initrd}`;
  return {
    bank,
    pcrs: {
      ...pinned,
      ...Object.fromEntries([...replayed].map(([pcr, value]) => [String(pcr), value.toString("hex")])),
    },
    sources: {
      ...Object.fromEntries(Object.keys(pinned).map((i) => [i, "value pinned"])),
      "4": `kernel file ${args.kernel}`,
      "5": `cmdline ${JSON.stringify(args.cmdline)} and ${initrdSource}`,
    },
  };
}
