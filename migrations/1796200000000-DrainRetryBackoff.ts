import { MigrationInterface, QueryRunner } from 'typeorm';

/** Per-portal drain retry state: failures in a row, when the next retry is due, the last error. */
export class DrainRetryBackoff1796200000000 implements MigrationInterface {
  name = 'DrainRetryBackoff1796200000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "offline_queue_states" ADD "consecutive_failures" integer NOT NULL DEFAULT 0`,
    );
    await queryRunner.query(
      `ALTER TABLE "offline_queue_states" ADD "next_attempt_at" TIMESTAMP WITH TIME ZONE`,
    );
    await queryRunner.query(
      `ALTER TABLE "offline_queue_states" ADD "last_error" character varying(1000)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "offline_queue_states" DROP COLUMN "last_error"`);
    await queryRunner.query(`ALTER TABLE "offline_queue_states" DROP COLUMN "next_attempt_at"`);
    await queryRunner.query(
      `ALTER TABLE "offline_queue_states" DROP COLUMN "consecutive_failures"`,
    );
  }
}
