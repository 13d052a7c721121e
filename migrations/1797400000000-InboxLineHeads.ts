import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Only the head of an object's line is due: the events waiting behind an unfinished (or dead)
 * event of their object get no due time, so claims no longer scan them. An index of claimed rows
 * answers "is anything of this object running" for every candidate of a claim. The due index
 * holds the claim's whole order (due time, then id), so a claim reads candidates in order and stops
 * at its limit instead of sorting every event that fell due in the same instant (a drained page).
 */
export class InboxLineHeads1797400000000 implements MigrationInterface {
  name = 'InboxLineHeads1797400000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "ix_stored_events_due"`);
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_due" ON "stored_events" ("next_attempt_at", "id") WHERE "status" IN ('pending','failed')`,
    );
    // A queue table: every run rewrites its row (claim, outcome, the next head). Vacuumed and
    // analysed after a small share of changes, not Postgres's default 20% / 10%, so dead entries
    // do not pile up in front of the due index and the claim's plan follows a burst of stores.
    await queryRunner.query(
      `ALTER TABLE "stored_events" SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000, autovacuum_analyze_scale_factor = 0.01, autovacuum_analyze_threshold = 1000)`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_claimed" ON "stored_events" ("member_id", "ordering_key") WHERE "claim_expires_at" IS NOT NULL`,
    );
    await queryRunner.query(
      `UPDATE "stored_events" AS e SET "next_attempt_at" = NULL
       WHERE e."status" IN ('pending','failed') AND e."ordering_key" IS NOT NULL
         AND e."next_attempt_at" IS NOT NULL
         AND EXISTS (SELECT 1 FROM "stored_events" p
                     WHERE p."member_id" = e."member_id" AND p."ordering_key" = e."ordering_key"
                       AND p."status" IN ('pending','failed','dead') AND p."id" < e."id")`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // The previous release scans every due row and checks its line itself: all become due.
    await queryRunner.query(
      `UPDATE "stored_events" SET "next_attempt_at" = now()
       WHERE "status" IN ('pending','failed') AND "next_attempt_at" IS NULL`,
    );
    await queryRunner.query(
      `ALTER TABLE "stored_events" RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)`,
    );
    await queryRunner.query(`DROP INDEX "ix_stored_events_claimed"`);
    await queryRunner.query(`DROP INDEX "ix_stored_events_due"`);
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_due" ON "stored_events" ("next_attempt_at") WHERE "status" IN ('pending','failed')`,
    );
  }
}
