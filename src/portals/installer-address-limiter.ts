interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * A token bucket per client address for installation confirmations: `perMinute` attempts, refilled
 * continuously. An attempt takes its token before the OAuth exchange, so a burst of concurrent
 * requests is bounded too; a confirmed installation gives it back, so genuine installations (for
 * apps without a UI they all come from a few Bitrix24 servers) never use up an address's allowance.
 * Memory is bounded: at most `maxTracked` addresses are remembered, the least recently used
 * forgotten first; a bucket given back to full is dropped at once.
 */
export class InstallerAddressLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly tokensPerMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly maxTracked = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokensPerMs = perMinute / 60_000;
  }

  /** Takes one attempt for `address`: 0 when taken, else the milliseconds until one is free. */
  tryTake(address: string): number {
    const bucket = this.refilled(address);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      this.remember(address, bucket);
      return 0;
    }
    this.remember(address, bucket);
    return Math.ceil((1 - bucket.tokens) / this.tokensPerMs);
  }

  /** The attempt led to a confirmed installation: it does not count against `address`. */
  giveBack(address: string): void {
    const bucket = this.refilled(address);
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + 1);
    if (bucket.tokens >= this.perMinute) this.buckets.delete(address);
    else this.remember(address, bucket);
  }

  get trackedAddresses(): number {
    return this.buckets.size;
  }

  private refilled(address: string): Bucket {
    const now = this.now();
    const bucket = this.buckets.get(address);
    if (!bucket) return { tokens: this.perMinute, updatedAt: now };
    bucket.tokens = Math.min(
      this.perMinute,
      bucket.tokens + (now - bucket.updatedAt) * this.tokensPerMs,
    );
    bucket.updatedAt = now;
    return bucket;
  }

  /** Re-inserted on every use, so the Map's first key is the least recently used address. */
  private remember(address: string, bucket: Bucket): void {
    this.buckets.delete(address);
    while (this.buckets.size >= this.maxTracked) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
    }
    this.buckets.set(address, bucket);
  }
}
