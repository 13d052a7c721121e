import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A dead event holds its object's line until the operator replays or discards it (so the ordering
 * index covers dead rows too); events no handler took are `unhandled` instead of `processed`; a
 * discard is recorded in the event's history.
 */
export class InboxDeadHoldsTheLine1796800000000 implements MigrationInterface {
  name = 'InboxDeadHoldsTheLine1796800000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "stored_events" DROP CONSTRAINT "ck_stored_events_status"`,
    );
    await queryRunner.query(
      `ALTER TABLE "stored_events" ADD CONSTRAINT "ck_stored_events_status" CHECK ("status" IN ('pending','processed','failed','dead','unhandled','discarded'))`,
    );
    await queryRunner.query(`DROP INDEX "ix_stored_events_ordering"`);
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_ordering" ON "stored_events"  ("member_id", "ordering_key", "id") WHERE "status" IN ('pending','failed','dead') AND "ordering_key" IS NOT NULL`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" DROP CONSTRAINT "ck_event_attempts_outcome"`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" ADD CONSTRAINT "ck_event_attempts_outcome" CHECK ("outcome" IN ('processed','failed','dead','unhandled','discarded'))`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" DROP CONSTRAINT "ck_event_attempts_trigger"`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" ADD CONSTRAINT "ck_event_attempts_trigger" CHECK ("trigger" IN ('automatic','replay','discard'))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    // Back to what the previous release knew: no handler meant processed; a discard is undone.
    await queryRunner.query(`DELETE FROM "event_attempts" WHERE "trigger" = 'discard'`);
    await queryRunner.query(
      `UPDATE "event_attempts" SET "outcome" = 'processed' WHERE "outcome" = 'unhandled'`,
    );
    await queryRunner.query(
      `UPDATE "stored_events" SET "status" = 'processed', "processed_at" = now() WHERE "status" = 'unhandled'`,
    );
    await queryRunner.query(
      `UPDATE "stored_events" SET "status" = 'dead' WHERE "status" = 'discarded'`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" DROP CONSTRAINT "ck_event_attempts_trigger"`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" ADD CONSTRAINT "ck_event_attempts_trigger" CHECK ("trigger" IN ('automatic','replay'))`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" DROP CONSTRAINT "ck_event_attempts_outcome"`,
    );
    await queryRunner.query(
      `ALTER TABLE "event_attempts" ADD CONSTRAINT "ck_event_attempts_outcome" CHECK ("outcome" IN ('processed','failed','dead'))`,
    );
    await queryRunner.query(`DROP INDEX "ix_stored_events_ordering"`);
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_ordering" ON "stored_events"  ("member_id", "ordering_key", "id") WHERE "status" IN ('pending','failed') AND "ordering_key" IS NOT NULL`,
    );
    await queryRunner.query(
      `ALTER TABLE "stored_events" DROP CONSTRAINT "ck_stored_events_status"`,
    );
    await queryRunner.query(
      `ALTER TABLE "stored_events" ADD CONSTRAINT "ck_stored_events_status" CHECK ("status" IN ('pending','processed','failed','dead'))`,
    );
  }
}
