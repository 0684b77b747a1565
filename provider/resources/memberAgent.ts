import { AgentUnreachableError } from "../dom0/dom0";

/**
 * What a refresh asks a member's agent, or undefined when the member is not running: its Guest
 * shows that, and what is on record stands until it runs again. Any other failure is the read's.
 */
export async function askRunningMember<T>(ask: Promise<T>): Promise<T | undefined> {
  try {
    return await ask;
  } catch (e) {
    if (e instanceof AgentUnreachableError && e.why === "not running") return undefined;
    throw e;
  }
}
