import { Client } from 'pg';
import { bearer } from '../admin/admin-routes';
import type { AppProcess } from '../support/app-process';
import { startReplicaSet, type ReplicaSet } from '../support/replica-set';
import { TEST_ADMIN_TOKEN } from '../support/test-app';
import { formBody, postForm } from '../webhooks/webhook-harness';

const LIMIT = 4;

/** An install page POST with a refresh token the OAuth server never issued: refused (403) unless limited. */
async function forgedInstall(replica: AppProcess, attempt: string): Promise<number> {
  const response = await postForm(
    `${replica.url}/bitrix24/install`,
    formBody({
      REFRESH_ID: `madeuprefreshtoken${attempt.padStart(12, '0')}`,
      APPLICATION_TOKEN: 'madeupapplicationtoken',
      member_id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    }),
  );
  await response.arrayBuffer();
  return response.status;
}

async function adminStats(replica: AppProcess, token: string): Promise<number> {
  const response = await fetch(`${replica.url}/admin/stats`, { headers: bearer(token) });
  await response.arrayBuffer();
  return response.status;
}

/** Two server processes on one database, as two replicas behind a load balancer. */
describe('per-address limits shared by two replicas', () => {
  let sql: Client;
  let replicas: AppProcess[] = [];
  let set: ReplicaSet | undefined;

  beforeAll(async () => {
    set = await startReplicaSet(2, {
      env: {
        ADMIN_AUTH_MAX_FAILURES_PER_MINUTE: String(LIMIT),
        INSTALL_CONFIRMATIONS_PER_ADDRESS_PER_MINUTE: String(LIMIT),
      },
    });
    ({ sql, replicas } = set);
  });

  // Every request comes from 127.0.0.1: each test starts with that address's windows unused.
  beforeEach(async () => {
    await sql.query('DELETE FROM shared_limits');
  });

  afterAll(async () => {
    await set?.close();
  });

  it('counts wrong admin tokens from one address across both: two to each, then 429 at either', async () => {
    const [first, second] = replicas;
    for (const replica of [first, second, first, second]) {
      expect(await adminStats(replica, 'a-stale-token')).toBe(401);
    }
    expect(await adminStats(first, 'a-stale-token')).toBe(429);
    expect(await adminStats(second, 'a-stale-token')).toBe(429);
    expect(await adminStats(first, TEST_ADMIN_TOKEN)).toBe(200);
    expect(await adminStats(second, TEST_ADMIN_TOKEN)).toBe(200);
  }, 60_000);

  it('counts unconfirmed installations from one address across both: two to each, then 429 at either', async () => {
    const [first, second] = replicas;
    const statuses = [];
    for (const [index, replica] of [first, second, first, second].entries()) {
      statuses.push(await forgedInstall(replica, String(index)));
    }
    expect(statuses).toEqual([403, 403, 403, 403]);
    expect(await forgedInstall(first, '4')).toBe(429);
    expect(await forgedInstall(second, '5')).toBe(429);
  }, 60_000);

  it('counts in each process while the table does not answer, and in the table again after', async () => {
    const [first, second] = replicas;
    // Held until rollback: every query of the limits waits on it and times out.
    await sql.query('BEGIN');
    await sql.query('LOCK TABLE shared_limits IN ACCESS EXCLUSIVE MODE');
    try {
      for (let failure = 0; failure < LIMIT; failure++) {
        expect(await adminStats(first, 'a-stale-token')).toBe(401);
      }
      expect(await adminStats(first, 'a-stale-token')).toBe(429);
      // The other process counts its own: this address has not used its allowance there.
      expect(await adminStats(second, 'a-stale-token')).toBe(401);
      expect(await adminStats(first, TEST_ADMIN_TOKEN)).toBe(200);
      await first.waitForLog(/counting in this process only/);
    } finally {
      await sql.query('ROLLBACK');
    }

    for (let failure = 0; failure < LIMIT; failure++) {
      expect(await forgedInstall(second, `after-${failure}`)).toBe(403);
    }
    expect(await forgedInstall(first, 'after-limit')).toBe(429);
    await second.waitForLog(/the database answers again/);
    const { rows } = await sql.query<{ key: string }>('SELECT key FROM shared_limits');
    expect(rows.map((row) => row.key)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^install_confirmations:/)]),
    );
  }, 60_000);
});
