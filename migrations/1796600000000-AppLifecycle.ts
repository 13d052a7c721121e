import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What app.info says of a portal (version, license) and when it is next read: at least daily,
 * each portal at its own time of day so the fleet's reads spread over the day.
 */
export class AppLifecycle1796600000000 implements MigrationInterface {
  name = 'AppLifecycle1796600000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "portals" ADD "app_version" character varying(32)`);
    await queryRunner.query(`ALTER TABLE "portals" ADD "app_updated_at" TIMESTAMP WITH TIME ZONE`);
    await queryRunner.query(`ALTER TABLE "portals" ADD "license_status" character varying(8)`);
    await queryRunner.query(`ALTER TABLE "portals" ADD "license_payment_expired" boolean`);
    await queryRunner.query(`ALTER TABLE "portals" ADD "license_days" integer`);
    await queryRunner.query(
      `ALTER TABLE "portals" ADD "license_checked_at" TIMESTAMP WITH TIME ZONE`,
    );
    await queryRunner.query(
      `ALTER TABLE "portals" ADD "license_check_due_at" TIMESTAMP WITH TIME ZONE`,
    );
    await queryRunner.query(
      `ALTER TABLE "portals" ADD "license_read_requested_at" TIMESTAMP WITH TIME ZONE`,
    );
    // Portals installed before this release: first reads spread over the coming day.
    await queryRunner.query(
      `UPDATE "portals" SET "license_check_due_at" = now() + random() * interval '24 hours'
       WHERE "status" = 'active'`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_portals_license_check_due_at" ON "portals" ("license_check_due_at")
       WHERE "status" = 'active'`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "ix_portals_license_check_due_at"`);
    for (const column of [
      'license_read_requested_at',
      'license_check_due_at',
      'license_checked_at',
      'license_days',
      'license_payment_expired',
      'license_status',
      'app_updated_at',
      'app_version',
    ]) {
      await queryRunner.query(`ALTER TABLE "portals" DROP COLUMN "${column}"`);
    }
  }
}
