import { MigrationInterface, QueryRunner } from 'typeorm';

/** The example handler's own table: the latest copy of each changed deal. */
export class ExampleDeals1796300000001 implements MigrationInterface {
  name = 'ExampleDeals1796300000001';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "example_deals" ("member_id" character varying(64) NOT NULL, "deal_id" bigint NOT NULL, "title" character varying(255), "stage_id" character varying(64), "fields" jsonb NOT NULL, "deleted" boolean NOT NULL DEFAULT false, "event_id" bigint NOT NULL, "copied_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "pk_example_deals" PRIMARY KEY ("member_id", "deal_id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "example_deals"`);
  }
}
