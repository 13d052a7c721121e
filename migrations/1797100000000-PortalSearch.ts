import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the admin portal list's search and delivery-mode filter (`?q=`, `?deliveryMode=`):
 * prefix matches on lower(domain) and member_id use text_pattern_ops, so `LIKE 'prefix%'` is an
 * index range scan under any collation; the delivery mode keeps member_id order for the keyset.
 */
export class PortalSearch1797100000000 implements MigrationInterface {
  name = 'PortalSearch1797100000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "ix_portals_domain_prefix" ON "portals" (lower("domain") text_pattern_ops)`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_portals_member_id_prefix" ON "portals" ("member_id" text_pattern_ops)`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_portals_delivery_mode_member_id" ON "portals" ("delivery_mode", "member_id")`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "ix_portals_delivery_mode_member_id"`);
    await queryRunner.query(`DROP INDEX "ix_portals_member_id_prefix"`);
    await queryRunner.query(`DROP INDEX "ix_portals_domain_prefix"`);
  }
}
