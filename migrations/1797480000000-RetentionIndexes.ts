import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes that let retention find old rows without scanning the tables: finished events (processed
 * or discarded) in the order they finished, and cleared drain batches in the order they were
 * cleared. Built CONCURRENTLY (outside a transaction), so deploying them on a table of tens of
 * millions of rows never stops the drain or the inbox from writing while they build.
 */
export class RetentionIndexes1797480000000 implements MigrationInterface {
  name = 'RetentionIndexes1797480000000';
  transaction = false;

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A build interrupted before (a crash mid-deploy) leaves an invalid index of that name.
    await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS "ix_stored_events_finished"`);
    await queryRunner.query(
      `CREATE INDEX CONCURRENTLY "ix_stored_events_finished" ON "stored_events" ((COALESCE("processed_at", "received_at")), "id") WHERE "status" IN ('processed','discarded')`,
    );
    await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS "ix_drain_batches_cleared_at"`);
    await queryRunner.query(
      `CREATE INDEX CONCURRENTLY "ix_drain_batches_cleared_at" ON "drain_batches" ("cleared_at") WHERE "state" = 'cleared'`,
    );
  }

  // TypeORM reverts every migration inside a transaction, where CONCURRENTLY is refused; dropping
  // an index takes its table's lock only for an instant.
  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS "ix_drain_batches_cleared_at"`);
    await queryRunner.query(`DROP INDEX IF EXISTS "ix_stored_events_finished"`);
  }
}
