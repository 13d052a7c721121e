import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention retires unhandled events too, so its index of finished events holds them as well. An
 * unhandled event has no processed_at: like a discarded one, it is ordered by received_at, which is
 * at or before its last attempt (retention checks the attempts). Rebuilt CONCURRENTLY (outside a
 * transaction), so the drain and the inbox go on writing while it builds; until it is valid,
 * retention walks the old one.
 */
export class RetentionOfUnhandledEvents1797500000000 implements MigrationInterface {
  name = 'RetentionOfUnhandledEvents1797500000000';
  transaction = false;

  public async up(queryRunner: QueryRunner): Promise<void> {
    // A build interrupted before (a crash mid-deploy) leaves an invalid index of that name.
    await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS "ix_stored_events_finished_next"`);
    await queryRunner.query(
      `CREATE INDEX CONCURRENTLY "ix_stored_events_finished_next" ON "stored_events" ((COALESCE("processed_at", "received_at")), "id") WHERE "status" IN ('processed','discarded','unhandled')`,
    );
    await queryRunner.query(`DROP INDEX CONCURRENTLY IF EXISTS "ix_stored_events_finished"`);
    await queryRunner.query(
      `ALTER INDEX "ix_stored_events_finished_next" RENAME TO "ix_stored_events_finished"`,
    );
  }

  // TypeORM reverts every migration inside a transaction, where CONCURRENTLY is refused: the old
  // index is built in place, holding off writes to stored_events while it builds.
  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS "ix_stored_events_finished"`);
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_finished" ON "stored_events" ((COALESCE("processed_at", "received_at")), "id") WHERE "status" IN ('processed','discarded')`,
    );
  }
}
