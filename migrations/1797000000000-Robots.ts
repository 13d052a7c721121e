import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Robots: a digest of what was registered per portal and code (bizproc.robot.list answers only
 * codes), and the answer to each robot run, claimed before it is sent so it is sent once.
 */
export class Robots1797000000000 implements MigrationInterface {
  name = 'Robots1797000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "installed_robots" ("member_id" character varying(64) NOT NULL, "code" character varying(128) NOT NULL, "definition_sha256" character varying(64) NOT NULL, "installed_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "pk_installed_robots" PRIMARY KEY ("member_id", "code"))`,
    );
    await queryRunner.query(
      `CREATE TABLE "robot_answers" ("event_id" bigint NOT NULL, "state" character varying(16) NOT NULL, "return_values" jsonb, "log_message" text, "deadline_at" TIMESTAMP WITH TIME ZONE, "attempts" integer NOT NULL DEFAULT 0, "claimed_until" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "sent_at" TIMESTAMP WITH TIME ZONE, "error" text, CONSTRAINT "ck_robot_answers_state" CHECK ("state" IN ('pending','sending','sent','too_late','failed')), CONSTRAINT "pk_robot_answers" PRIMARY KEY ("event_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_robot_answers_unsent" ON "robot_answers" ("created_at") WHERE "state" IN ('pending','sending')`,
    );
    await queryRunner.query(
      `ALTER TABLE "robot_answers" ADD CONSTRAINT "fk_robot_answers_event" FOREIGN KEY ("event_id") REFERENCES "stored_events"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "robot_answers" DROP CONSTRAINT "fk_robot_answers_event"`);
    await queryRunner.query(`DROP INDEX "public"."ix_robot_answers_unsent"`);
    await queryRunner.query(`DROP TABLE "robot_answers"`);
    await queryRunner.query(`DROP TABLE "installed_robots"`);
  }
}
