import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * When a portal's queue was last searched for stranded reserved batches; inbox worker claims,
 * per-object ordering lookups and the handlers each attempt ran.
 */
export class DrainRecoveryAndInboxClaims1795704600000 implements MigrationInterface {
  name = 'DrainRecoveryAndInboxClaims1795704600000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "offline_queue_states" ADD "last_adoption_check_at" TIMESTAMP WITH TIME ZONE`,
    );
    await queryRunner.query(
      `ALTER TABLE "stored_events" ADD "claim_expires_at" TIMESTAMP WITH TIME ZONE`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" ADD "handlers" text array NOT NULL DEFAULT '{}'`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_ordering" ON "stored_events"  ("member_id", "ordering_key", "id") WHERE "status" IN ('pending','failed') AND "ordering_key" IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_ordering"`);
    await queryRunner.query(`ALTER TABLE "event_attempts" DROP COLUMN "handlers"`);
    await queryRunner.query(`ALTER TABLE "stored_events" DROP COLUMN "claim_expires_at"`);
    await queryRunner.query(
      `ALTER TABLE "offline_queue_states" DROP COLUMN "last_adoption_check_at"`,
    );
  }
}
