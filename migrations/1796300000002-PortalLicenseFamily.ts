import { MigrationInterface, QueryRunner } from 'typeorm';

/** The portal's plan family as app.info reports it: Enterprise portals get their own REST limits. */
export class PortalLicenseFamily1796300000002 implements MigrationInterface {
  name = 'PortalLicenseFamily1796300000002';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "portals" ADD "license_family" character varying(32)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "portals" DROP COLUMN "license_family"`);
  }
}
