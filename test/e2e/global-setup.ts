import { buildConsumer } from "./consumer";

export default async function globalSetup(): Promise<void> {
  await buildConsumer();
}
