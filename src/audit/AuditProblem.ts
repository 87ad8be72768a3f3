/**
 * What `als audit` can find wrong, each named precisely: which frame (byte offset and index),
 * which layer (digest and path), and a code scripts can match on.
 */

export type AuditArea = "log" | "layer" | "alias" | "ref" | "stray" | "checkpoint"

export type AuditCode =
  // the log's bytes
  | "LogChecksum" // a frame's bytes were changed
  | "LogChain" // frames removed, added or reordered
  | "LogFraming" // bytes that are not frames
  | "LogDecode" // an intact frame whose event cannot be read
  | "LogTornTail" // a torn append, cut by the next append
  // the store against the log's fold
  | "LayerMissing" // committed, not removed, and not on disk
  | "LayerIncomplete" // diff, info or blob missing
  | "InfoUnreadable"
  | "InfoMismatch" // info says otherwise than the LayerCommitted event
  | "BlobSizeMismatch"
  | "BlobDigestMismatch" // --deep
  | "LinkBroken" // a linked layer's diff or blob points nowhere
  | "LinkOutsidePool" // a linked layer's diff or blob resolves outside the pool it was linked from
  | "RemovedLayerPresent" // LayerRemoved, yet the directory is there
  | "UnexplainedLayer" // a layer directory no LayerCommitted explains
  | "AliasMissing" // a TOC alias the commit made is gone
  | "AliasDangling"
  | "AliasWrongTarget"
  | "AliasWrongLayer" // the alias's name is neither the blob nor the TOC digest its target's info names
  | "UnexplainedAlias"
  | "RefEntryMissing" // a layer the log indexed under a ref has no entry in its view
  | "RefEntryDangling"
  | "RefEntryWrongTarget"
  | "RefEntryWrongLayer" // the entry's key is neither the blob nor the TOC digest its target's info names
  | "UnexplainedRef"
  | "UnexplainedRefEntry"
  | "StrayEntry" // something in the root that is none of the store's names
  // --since
  | "CheckpointUnreadable"
  | "CheckpointTruncated"
  | "CheckpointRewritten"

export interface AuditProblem {
  readonly area: AuditArea
  readonly code: AuditCode
  readonly message: string
  /** for log problems: where the frame starts and its position from 0 */
  readonly frame?: { readonly offset: number; readonly index: number }
  readonly layer?: string
  /** the path on disk the problem is about */
  readonly path?: string
}

/** One line for people: where, then what. */
export const describeProblem = (p: AuditProblem): string => {
  const where = p.frame
    ? `log frame ${p.frame.index} at byte ${p.frame.offset}`
    : p.layer
    ? `layer ${p.layer}${p.path ? ` (${p.path})` : ""}`
    : p.path ?? p.area
  return `${p.code}: ${where}: ${p.message}`
}
