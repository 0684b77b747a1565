/**
 * A xenstore stand-in: one tree of string values per lab host, kept in
 * /var/lib/tvd-lab/xenstore.json. The emulated xl writes the entries libxl would (domain
 * names, vtpm frontend/backend nodes) and guests' reporting paths
 * (/local/domain/<domid>/data/...) are read and written with the xenstore-* commands.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { LAB_DIR } from "../xl/state";

export interface XsNode {
  value: string;
  children: Record<string, XsNode>;
}

const file = () => path.join(LAB_DIR, "xenstore.json");

export function loadTree(): XsNode {
  if (!existsSync(file())) return { value: "", children: {} };
  return JSON.parse(readFileSync(file(), "utf8")) as XsNode;
}

export function saveTree(tree: XsNode): void {
  const tmp = `${file()}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(tree));
  renameSync(tmp, file());
}

export function splitPath(p: string): string[] {
  if (!p.startsWith("/")) throw new Error(`xenstore path must be absolute: ${p}`);
  return p.split("/").filter((s) => s !== "");
}

export function lookup(tree: XsNode, p: string): XsNode | undefined {
  let node: XsNode | undefined = tree;
  for (const part of splitPath(p)) {
    node = node.children[part];
    if (!node) return undefined;
  }
  return node;
}

/** Writes a value, creating parent nodes with empty values as xenstored does. */
export function write(tree: XsNode, p: string, value: string): void {
  let node = tree;
  for (const part of splitPath(p)) {
    node.children[part] ??= { value: "", children: {} };
    node = node.children[part];
  }
  node.value = value;
}

export function remove(tree: XsNode, p: string): boolean {
  const parts = splitPath(p);
  const last = parts.pop();
  if (last === undefined) return false;
  const parent = lookup(tree, "/" + parts.join("/"));
  if (!parent?.children[last]) return false;
  delete parent.children[last];
  return true;
}

/** `xenstore-ls` output: `name = "value"`, children indented one space per level. */
export function renderLs(node: XsNode, depth = 0): string {
  let out = "";
  for (const [name, child] of Object.entries(node.children)) {
    out += `${" ".repeat(depth)}${name} = "${child.value}"\n`;
    out += renderLs(child, depth + 1);
  }
  return out;
}
