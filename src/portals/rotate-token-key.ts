import 'reflect-metadata';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { loadConfigOrExit } from '../config/app-config';
import { dataSourceOptions } from '../database/data-source-options';
import { EmbeddedDatabase, startEmbeddedPostgres } from '../database/embedded-postgres';
import { createPinoLogger } from '../logging/app-logger';
import { TokenCipher } from './token-cipher';

/** Rows re-encrypted per transaction: short row locks, so refreshes running meanwhile barely wait. */
const ROTATION_BATCH = 100;

export interface KeyRotationReport {
  /** Rows now under the current key that were under another one. */
  reencrypted: number;
  /** Rows that already were under the current key. */
  alreadyCurrent: number;
}

/**
 * Re-encrypts every stored token under the current TOKEN_ENCRYPTION_KEY. Run it after moving the
 * old key to TOKEN_ENCRYPTION_OLD_KEYS; once it reports, the old key can be dropped. Each row is
 * rewritten under its row lock, the same lock a refresh takes, so a concurrent refresh never loses
 * its new chain to this rewrite. Tokens themselves do not change: generations stay as they are.
 */
export async function rotateTokenKey(
  dataSource: DataSource,
  cipher: TokenCipher,
  log: Logger,
): Promise<KeyRotationReport> {
  const report: KeyRotationReport = { reencrypted: 0, alreadyCurrent: 0 };
  let after = '';
  for (;;) {
    const batch = await dataSource.transaction(async (manager) => {
      const rows = await manager.query<
        { member_id: string; access_token: string; refresh_token: string }[]
      >(
        `SELECT "member_id", "access_token", "refresh_token" FROM "portal_tokens"
         WHERE "member_id" > $1 AND "refresh_token" IS NOT NULL AND "access_token" IS NOT NULL
         ORDER BY "member_id" LIMIT $2 FOR UPDATE`,
        [after, ROTATION_BATCH],
      );
      for (const row of rows) {
        const current = [row.access_token, row.refresh_token].every(
          (ciphertext) => TokenCipher.keyIdOfCiphertext(ciphertext) === cipher.currentKeyId,
        );
        if (current) {
          report.alreadyCurrent += 1;
          continue;
        }
        const accessContext = `${row.member_id}:access`;
        const refreshContext = `${row.member_id}:refresh`;
        await manager.query(
          `UPDATE "portal_tokens" SET "access_token" = $2, "refresh_token" = $3, "key_id" = $4
           WHERE "member_id" = $1`,
          [
            row.member_id,
            cipher.encrypt(cipher.decrypt(row.access_token, accessContext), accessContext),
            cipher.encrypt(cipher.decrypt(row.refresh_token, refreshContext), refreshContext),
            cipher.currentKeyId,
          ],
        );
        report.reencrypted += 1;
      }
      return rows;
    });
    if (batch.length === 0) break;
    after = batch[batch.length - 1].member_id;
  }
  log.info({ ...report, keyId: cipher.currentKeyId }, 'token key rotation finished');
  return report;
}

/** `npm run tokens:rotate-key`: the same environment as the server (DATABASE_URL or DATA_DIR). */
async function main(): Promise<void> {
  const config = loadConfigOrExit(process.env);
  const log = createPinoLogger(config.logLevel).child({ component: 'rotate-token-key' });
  let embedded: EmbeddedDatabase | undefined;
  if (!config.database.url) embedded = await startEmbeddedPostgres(config.database.dataDir, log);
  const dataSource = new DataSource(
    dataSourceOptions(config.database.url ?? embedded!.url, { poolSize: 2 }),
  );
  await dataSource.initialize();
  try {
    await rotateTokenKey(dataSource, TokenCipher.fromConfig(config, log), log);
  } finally {
    await dataSource.destroy();
    await embedded?.stop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `Token key rotation failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
