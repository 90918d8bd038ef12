/**
 * Checks a channel's store, replayed, against the broadcasts the server acknowledged: every
 * acknowledged broadcast stored exactly once, at the seq its acknowledgement named, and the stored
 * seqs running 1..head without a gap.
 */
import { readText } from "./message-text.ts";
import type { ChannelReplay } from "./systems/types.ts";
import type { PublishResult } from "./worker-protocol.ts";

export interface DurabilityCheck {
  /** Acknowledged broadcasts that named a seq: what is checked. */
  acked: number;
  /** Acknowledged broadcasts not in the store. */
  missing: number;
  /** Extra stored copies of one broadcast (a broadcast stored twice counts 1). */
  duplicates: number;
  /** Acknowledged broadcasts stored, but not at the seq their acknowledgement named. */
  seqMismatches: number;
  /** Seqs from 1 to the head (the highest stored or acknowledged) with no stored message. */
  seqGaps: number;
  /** Stored broadcasts whose publish failed at the client (allowed: the sender was told it failed). */
  unackedStored: number;
  /** Resets in the replay: the server announcing that it cannot replay everything. */
  resets: number;
}

/** `runs`: every publish run to `channel`, with the phase its message text carries. */
export function checkDurability(
  channel: string,
  runs: Array<{ phase: string; publish: PublishResult }>,
  replay: ChannelReplay,
): DurabilityCheck {
  const key = (phase: string, seq: number) => `${phase}#${seq}`;
  /** The bench's broadcast -> the seq its acknowledgement named. */
  const acked = new Map<string, number>();
  for (const { phase, publish } of runs)
    (publish.storedSeqs[channel] ?? []).forEach((seq, i) => {
      if (seq > 0) acked.set(key(phase, i + 1), seq);
    });
  /** The bench's broadcast -> every seq it is stored at. */
  const stored = new Map<string, number[]>();
  const storedSeqs = new Set<number>();
  let head = 0;
  for (const message of replay.messages) {
    storedSeqs.add(message.seq);
    head = Math.max(head, message.seq);
    const marked = readText(message.text);
    if (!marked) continue;
    const k = key(marked.phase, marked.seq);
    stored.set(k, [...(stored.get(k) ?? []), message.seq]);
  }
  let missing = 0;
  let seqMismatches = 0;
  for (const [k, seq] of acked) {
    head = Math.max(head, seq);
    const at = stored.get(k);
    if (!at) missing++;
    else if (!at.includes(seq)) seqMismatches++;
  }
  let duplicates = 0;
  let unackedStored = 0;
  for (const [k, at] of stored) {
    duplicates += at.length - 1;
    if (!acked.has(k)) unackedStored++;
  }
  let seqGaps = 0;
  for (let seq = 1; seq <= head; seq++) if (!storedSeqs.has(seq)) seqGaps++;
  return {
    acked: acked.size,
    missing,
    duplicates,
    seqMismatches,
    seqGaps,
    unackedStored,
    resets: replay.resets,
  };
}

/** True when nothing acknowledged was lost, stored twice or stored at another seq, and no seq is missing. */
export const storedExactlyOnce = (check: DurabilityCheck) =>
  check.missing === 0 &&
  check.duplicates === 0 &&
  check.seqMismatches === 0 &&
  check.seqGaps === 0 &&
  check.resets === 0;
