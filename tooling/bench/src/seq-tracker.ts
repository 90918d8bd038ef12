/** Which sequence numbers of one channel one connection has received: a growable bitmap. */
export class SeqTracker {
  private bits = new Uint8Array(16);
  distinct = 0;
  /** Highest seq received so far (0 = none). */
  highest = 0;

  /** Records `seq`; false when it was already received (a duplicate). */
  add(seq: number): boolean {
    const byte = seq >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2));
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (seq & 7);
    if (this.bits[byte]! & mask) return false;
    this.bits[byte]! |= mask;
    this.distinct++;
    if (seq > this.highest) this.highest = seq;
    return true;
  }

  has(seq: number): boolean {
    const byte = seq >> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (seq & 7))) !== 0;
  }

  /** Acknowledged seqs 1..sent (minus the failed ones) that never arrived. */
  missing(sent: number, failed: ReadonlySet<number>): number {
    let missing = 0;
    for (let seq = 1; seq <= sent; seq++) if (!failed.has(seq) && !this.has(seq)) missing++;
    return missing;
  }
}
