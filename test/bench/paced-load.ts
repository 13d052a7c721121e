/**
 * Evenly paced HTTP load for the webhook benchmark: form POSTs at fixed instants, latency counted
 * from the instant each one was due. It runs on a worker thread of its own and loads nothing but
 * this file, so the generator starts fast and shares no event loop with the server it measures.
 */
import { Agent, request } from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { percentile } from './percentile';

export interface PacedLoadOptions {
  /** Where every request is POSTed (application/x-www-form-urlencoded). */
  url: string;
  /** Request bodies, used in turn. */
  bodies: string[];
  /** Keep-alive connections at most. */
  connections: number;
  /** Requests per second. */
  rate: number;
  warmupSeconds: number;
  seconds: number;
}

export interface LatencySummary {
  rate: number;
  sent: number;
  failed: number;
  p50: number;
  p99: number;
  max: number;
}

export interface PacedResult {
  /** The first `warmupSeconds` at the rate, starting from idle: fresh connections, cold caches. */
  warmup: LatencySummary;
  /** The `seconds` that follow without a break. */
  measured: LatencySummary;
}

function summarize(latencies: Float64Array, failed: number, seconds: number): LatencySummary {
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return {
    rate: latencies.length / seconds,
    sent: latencies.length,
    failed,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1],
  };
}

/**
 * Requests at evenly spaced instants (autocannon's rate mode fires each second's quota in a burst).
 * Latency counts from the instant a request was due, so a stalled server is not hidden by a
 * generator that waits for it. The first `warmupSeconds` are summarized on their own.
 */
function runPacedLoad(options: PacedLoadOptions & { onWarmedUp(): void }): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const warmupCount = options.rate * options.warmupSeconds;
  const total = warmupCount + options.rate * options.seconds;
  const spacingMs = 1000 / options.rate;
  const latencies = new Float64Array(total);
  const failedAt = new Uint8Array(total);
  const target = new URL(options.url);
  let finished = 0;
  let due = 0;
  const startedAt = performance.now();
  return new Promise((resolve) => {
    const complete = (index: number, dueAt: number, ok: boolean): void => {
      latencies[index] = performance.now() - dueAt;
      if (!ok) failedAt[index] = 1;
      finished += 1;
      if (finished < total) return;
      agent.destroy();
      const failures = (from: number, to: number): number =>
        failedAt.subarray(from, to).reduce((sum, failed) => sum + failed, 0);
      resolve({
        warmup: summarize(
          latencies.subarray(0, warmupCount),
          failures(0, warmupCount),
          options.warmupSeconds,
        ),
        measured: summarize(
          latencies.subarray(warmupCount),
          failures(warmupCount, total),
          options.seconds,
        ),
      });
    };
    const fire = (index: number, dueAt: number): void => {
      const body = options.bodies[index % options.bodies.length];
      const outgoing = request(
        target,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'content-length': Buffer.byteLength(body),
          },
        },
        (response) => {
          response.resume();
          response.on('end', () => complete(index, dueAt, response.statusCode === 200));
        },
      );
      outgoing.on('error', () => complete(index, dueAt, false));
      outgoing.end(body);
    };
    const tick = (): void => {
      const now = performance.now();
      while (due < total && startedAt + due * spacingMs <= now) {
        fire(due, startedAt + due * spacingMs);
        due += 1;
        if (due === warmupCount) options.onWarmedUp();
      }
      if (due < total) setTimeout(tick, 1);
    };
    tick();
  });
}

/** Runs the load on a worker thread; `onWarmedUp` is called when the warm-up's last request is sent. */
export function startPacedLoad(
  options: PacedLoadOptions,
  onWarmedUp: () => void,
): Promise<PacedResult> {
  const worker = new Worker(__filename, { workerData: { role: 'paced-load', options } });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.on('message', (message: 'warmed-up' | PacedResult) => {
      if (message === 'warmed-up') onWarmedUp();
      else resolve(message);
    });
  });
}

const role = isMainThread ? undefined : (workerData as { role?: string } | null)?.role;
if (role === 'paced-load') {
  const { options } = workerData as { options: PacedLoadOptions };
  void runPacedLoad({ ...options, onWarmedUp: () => parentPort!.postMessage('warmed-up') }).then(
    (result) => parentPort!.postMessage(result),
  );
}
