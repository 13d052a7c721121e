import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The per-address limits every replica shares (admin authentication failures, installation
 * confirmations), in the shape rate-limiter-flexible reads and writes: one row per limit and
 * key, `points` taken in the window that ends at `expire` (Unix milliseconds). UNLOGGED: it
 * changes on every counted request, and losing it in a crash only starts the windows over.
 */
export class SharedLimits1796700000000 implements MigrationInterface {
  name = 'SharedLimits1796700000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE UNLOGGED TABLE "shared_limits" ("key" character varying(255) NOT NULL, "points" integer NOT NULL DEFAULT 0, "expire" bigint, CONSTRAINT "pk_shared_limits" PRIMARY KEY ("key"))`,
    );
    // The library deletes rows whose window ended an hour ago, every five minutes.
    await queryRunner.query(`CREATE INDEX "ix_shared_limits_expire" ON "shared_limits" ("expire")`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "ix_shared_limits_expire"`);
    await queryRunner.query(`DROP TABLE "shared_limits"`);
  }
}
