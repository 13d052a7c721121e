import { MigrationInterface, QueryRunner } from 'typeorm';

/** The placements the last placement sync left bound on each portal, for the admin view. */
export class PortalPlacements1796900000000 implements MigrationInterface {
  name = 'PortalPlacements1796900000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "portals" ADD "bound_placements" jsonb NOT NULL DEFAULT '[]'`,
    );
    await queryRunner.query(
      `ALTER TABLE "portals" ADD "placements_synced_at" TIMESTAMP WITH TIME ZONE`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "portals" DROP COLUMN "placements_synced_at"`);
    await queryRunner.query(`ALTER TABLE "portals" DROP COLUMN "bound_placements"`);
  }
}
