import { buildLab } from "../lab/global-setup";
import { buildConsumer } from "./consumer";

export default async function globalSetup(): Promise<void> {
  await buildConsumer();
  await buildLab(); // the programs run against a private lab
}
