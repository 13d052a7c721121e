import { DataSource } from 'typeorm';
import { bucketCapacity, type RateLimit } from '../../src/bitrix24/leaky-bucket';
import { SharedLeakyBucket } from '../../src/bitrix24/shared-leaky-bucket';
import { dataSourceOptions } from '../../src/database/data-source-options';
import { createPinoLogger } from '../../src/logging/app-logger';
import { createTestDatabase, TestDatabase } from '../support/postgres';

/** One request per second: each wait the bucket hands out is a whole number of seconds apart. */
const LIMIT: RateLimit = { rps: 1, burst: 4 };

/**
 * The GCRA row itself, through two data sources as two replicas would hold them: reservations from
 * both are served from one budget, in the order they were made.
 */
describe('SharedLeakyBucket: one GCRA row per portal in Postgres', () => {
  let database: TestDatabase;
  let replicas: DataSource[];
  const log = createPinoLogger('silent');

  beforeAll(async () => {
    database = await createTestDatabase();
    replicas = [
      new DataSource(dataSourceOptions(database.url, { poolSize: 2 })),
      new DataSource(dataSourceOptions(database.url, { poolSize: 2 })),
    ];
    await Promise.all(replicas.map((replica) => replica.initialize()));
  });

  afterAll(async () => {
    await Promise.all(replicas?.map((replica) => replica.destroy()) ?? []);
    await database?.drop();
  });

  /** The wait the bucket gives this reservation (ms), without sleeping it. */
  function reserve(replica: DataSource, memberId: string): Promise<number> {
    return new SharedLeakyBucket(memberId, LIMIT, replica, log).reserve();
  }

  it('lets the first `capacity` requests of all replicas go at once, then spaces them 1/rps apart', async () => {
    const memberId = 'gcra-shared';
    // The first `capacity` requests go at once, whichever replica sends them.
    const capacity = bucketCapacity(LIMIT);
    for (let index = 0; index < capacity; index += 1) {
      expect(await reserve(replicas[index % 2], memberId)).toBeLessThanOrEqual(0);
    }
    // The next reservations, alternating replicas, wait about 1 s, 2 s, 3 s: one shared queue.
    const waits: number[] = [];
    for (let index = 0; index < 3; index += 1) {
      waits.push(await reserve(replicas[index % 2], memberId));
    }
    waits.forEach((wait, index) => {
      expect(wait).toBeGreaterThan(index * 1000);
      expect(wait).toBeLessThanOrEqual((index + 1) * 1000);
    });
    // Another portal has a bucket of its own.
    expect(await reserve(replicas[1], 'gcra-other')).toBeLessThanOrEqual(0);
  });

  it('takes the bucket as full after QUERY_LIMIT_EXCEEDED', async () => {
    const memberId = 'gcra-penalized';
    const bucket = new SharedLeakyBucket(memberId, LIMIT, replicas[0], log);
    await bucket.acquire();
    bucket.penalize();
    // penalize() does not wait for its statement; poll until the row says "full".
    let wait = await reserve(replicas[1], memberId);
    for (let tries = 0; wait <= 0 && tries < 20; tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      wait = await reserve(replicas[1], memberId);
    }
    expect(wait).toBeGreaterThan(0);
  });

  it('gives up waiting when its caller aborts', async () => {
    const memberId = 'gcra-aborted';
    const bucket = new SharedLeakyBucket(memberId, LIMIT, replicas[0], log);
    for (let index = 0; index < bucketCapacity(LIMIT); index += 1) await bucket.acquire();
    const controller = new AbortController();
    const waiting = bucket.acquire(controller.signal);
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
  });
});
