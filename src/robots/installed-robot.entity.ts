import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * What the app last registered of a robot on a portal, as a digest of its fields:
 * bizproc.robot.list answers only codes, so this is how a changed declaration is told.
 */
@Entity({ name: 'installed_robots' })
export class InstalledRobotEntity {
  @PrimaryColumn({
    name: 'member_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_installed_robots',
  })
  memberId: string;

  @PrimaryColumn({
    name: 'code',
    type: 'varchar',
    length: 128,
    primaryKeyConstraintName: 'pk_installed_robots',
  })
  code: string;

  @Column({ name: 'definition_sha256', type: 'varchar', length: 64 })
  definitionSha256: string;

  @Column({ name: 'installed_at', type: 'timestamptz', default: () => 'now()' })
  installedAt: Date;
}
