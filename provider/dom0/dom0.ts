import type { Connection } from "../transport/connection";
import { sessionFor, type SshSession } from "../transport/ssh";
import { parseFacts, probeFactsArgv, type HostFactsReport } from "./facts";

/** Typed operations on one dom0. Each method is one round trip unless it says otherwise. */
export class Dom0 {
  private constructor(private readonly session: SshSession) {}

  static async connect(conn: Connection): Promise<Dom0> {
    return new Dom0(await sessionFor(conn));
  }

  async probeFacts(xenDataDir: string): Promise<HostFactsReport> {
    const { stdout } = await this.session.check(probeFactsArgv(xenDataDir));
    return parseFacts(stdout);
  }
}
