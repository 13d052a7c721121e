import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fencing tokens for inbox runs: every claim takes a new, never reused token from a sequence and
 * every write of that run (renewal, status, attempt record) checks it.
 */
export class InboxRunFencing1796100000000 implements MigrationInterface {
  name = 'InboxRunFencing1796100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE SEQUENCE "stored_event_run_token_seq" AS bigint`);
    await queryRunner.query(`ALTER TABLE "stored_events" ADD "run_token" bigint`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "stored_events" DROP COLUMN "run_token"`);
    await queryRunner.query(`DROP SEQUENCE "stored_event_run_token_seq"`);
  }
}
