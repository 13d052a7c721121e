import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each portal's leaky bucket, shared by every replica: one row holding the theoretical arrival
 * time (GCRA) in Unix milliseconds. UNLOGGED: it changes on every REST call, and losing it in a
 * crash only means starting from an empty bucket.
 */
export class PortalRateBuckets1796300000000 implements MigrationInterface {
  name = 'PortalRateBuckets1796300000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE UNLOGGED TABLE "portal_rate_buckets" ("member_id" character varying(64) NOT NULL, "tat_ms" double precision NOT NULL, CONSTRAINT "pk_portal_rate_buckets" PRIMARY KEY ("member_id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "portal_rate_buckets"`);
  }
}
