/**
 * A lifecycle driven the way the engine drives it: every create, diff and update first goes
 * through the kind's own check (defaults filled and kept, in-program conflicts refused), with an
 * owner per resource name, as the resource classes pass it.
 */
import type { Lifecycle } from "../../provider/core/define";

type Props = Record<string, unknown>;

export function viaEngine(lc: Lifecycle, stack = "lab/test") {
  const checked = async (olds: Props, news: Props): Promise<Props> => {
    const r = await lc.check(olds, { owner: `${stack} ${String(news.name)}`, ...news });
    if (r.failures?.length) throw new Error(r.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
    return r.inputs as Props;
  };
  return {
    check: checked,
    create: async (props: Props) => {
      const r = await lc.create(await checked({}, props));
      return { id: r.id, outs: r.outs as Props };
    },
    diff: async (id: string, olds: Props, news: Props) => lc.diff(id, olds, await checked(olds, news)),
    update: async (id: string, olds: Props, news: Props) => {
      const r = await lc.update(id, olds, await checked(olds, news));
      return { outs: r.outs as Props };
    },
    read: (id: string, props: Props) => lc.read(id, props),
    delete: (id: string, props: Props) => lc.delete(id, props),
  };
}
