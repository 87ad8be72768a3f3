/**
 * The inode table of the served tree. The kernel names a node by the id we gave it in a
 * LOOKUP answer and counts how often it was handed out; FORGET gives those counts back, and a
 * node whose count reaches zero is dropped (the root stays). One id per (parent, name): a
 * directory must have a single parent in the kernel's dentry cache, so the same layer under
 * two refs is two nodes. Ids are never reused (generation stays 0).
 */
import type { Digest } from "../domain/Digest.ts"
import { FUSE_ROOT_ID } from "../fuse/Protocol.ts"
import type { LazyLayer, LazyRef } from "../lazy/LazyFs.ts"

export type NodeKind =
  | { readonly kind: "root" }
  | { readonly kind: "ref"; readonly ref: string }
  | { readonly kind: "pool"; readonly annotations: ReadonlyArray<readonly [string, string]> }
  | {
    readonly kind: "layer"
    readonly key: Digest
    readonly ref?: string | undefined
    /** the blob digest and real directory of the layer in the store */
    readonly layer: Digest
    readonly dir: string
    /** served from its TOC while it is still being pulled (src/lazy) */
    readonly lazy?: LazyLayer | undefined
  }
  | { readonly kind: "link"; readonly target: string }
  | { readonly kind: "lazy"; readonly ref: LazyRef }

export interface Node {
  readonly id: number
  readonly parent: number
  readonly name: string
  data: NodeKind
  nlookup: number
}

export class NodeTable {
  private readonly byId = new Map<number, Node>()
  private readonly byName = new Map<string, number>()
  private next = FUSE_ROOT_ID + 1

  constructor() {
    this.byId.set(FUSE_ROOT_ID, { id: FUSE_ROOT_ID, parent: 0, name: "", data: { kind: "root" }, nlookup: 1 })
  }

  get(id: number): Node | undefined {
    return this.byId.get(id)
  }

  /** The node `name` below `parent` as the kernel last learnt it, if it still holds it. */
  child(parent: number, name: string): Node | undefined {
    const id = this.byName.get(`${parent}/${name}`)
    return id === undefined ? undefined : this.byId.get(id)
  }

  /** The node for `name` below `parent`, made or updated, with one more lookup counted. */
  lookup(parent: number, name: string, data: NodeKind): Node {
    const existing = this.child(parent, name)
    if (existing) {
      existing.data = data
      existing.nlookup++
      return existing
    }
    const node: Node = { id: this.next++, parent, name, data, nlookup: 1 }
    this.byId.set(node.id, node)
    this.byName.set(`${parent}/${name}`, node.id)
    return node
  }

  /** FORGET: the kernel dropped `n` of its references to `id`. */
  forget(id: number, n: number): void {
    const node = this.byId.get(id)
    if (!node || id === FUSE_ROOT_ID) return
    node.nlookup -= n
    if (node.nlookup <= 0) {
      this.byId.delete(id)
      if (this.byName.get(`${node.parent}/${node.name}`) === id) this.byName.delete(`${node.parent}/${node.name}`)
    }
  }

  get size(): number {
    return this.byId.size
  }
}
