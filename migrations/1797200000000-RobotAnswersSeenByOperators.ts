import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Robot answers: whether an earlier send may have reached Bitrix24 (so its refusal of a resend
 * means "already answered"); robot runs listed apart from events in the admin API (partial
 * indexes on the few robot rows, keyset by id, with and without a portal).
 */
export class RobotAnswersSeenByOperators1797200000000 implements MigrationInterface {
  name = 'RobotAnswersSeenByOperators1797200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "robot_answers" ADD "delivery_uncertain" boolean NOT NULL DEFAULT false`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_robot_runs" ON "stored_events" ("id") WHERE "event_name" LIKE 'ROBOT:%'`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_stored_events_member_robot_runs" ON "stored_events" ("member_id", "id") WHERE "event_name" LIKE 'ROBOT:%'`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_member_robot_runs"`);
    await queryRunner.query(`DROP INDEX "public"."ix_stored_events_robot_runs"`);
    await queryRunner.query(`ALTER TABLE "robot_answers" DROP COLUMN "delivery_uncertain"`);
  }
}
