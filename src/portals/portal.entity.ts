import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';
import type { DeliveryMode, PlanStatus, PortalStatus } from './portal-status';

export interface BoundEvent {
  event: string;
  offline: boolean;
}

/** A placement the app's handler is bound to, as the last placement sync left it. */
export interface BoundPlacement {
  code: string;
  title?: string;
}

@Entity({ name: 'portals' })
@Check(
  'ck_portals_status',
  `"status" IN ('new','active','needs_reinstall','payment_required','uninstalled','deleted')`,
)
@Check('ck_portals_delivery_mode', `"delivery_mode" IN ('exactly-once','at-most-once')`)
@Index('ix_portals_status_member_id', ['status', 'memberId'])
@Index('ix_portals_delivery_mode_member_id', ['deliveryMode', 'memberId'])
// Expression indexes (text_pattern_ops) of the admin search: made by migration 1797100000000.
@Index('ix_portals_domain_prefix', { synchronize: false })
@Index('ix_portals_member_id_prefix', { synchronize: false })
@Index('ix_portals_license_check_due_at', ['licenseCheckDueAt'], { where: `"status" = 'active'` })
export class PortalEntity {
  @PrimaryColumn({
    name: 'member_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_portals',
  })
  memberId: string;

  /** Host of client_endpoint (the OAuth answer's own `domain` names the OAuth server). */
  @Column({ name: 'domain', type: 'varchar', length: 255 })
  domain: string;

  @Column({ name: 'client_endpoint', type: 'varchar', length: 512 })
  clientEndpoint: string;

  @Column({ name: 'server_endpoint', type: 'varchar', length: 512, nullable: true })
  serverEndpoint: string | null;

  @Column({ name: 'status', type: 'varchar', length: 32, default: 'new' })
  status: PortalStatus;

  @Column({ name: 'status_reason', type: 'varchar', length: 500, nullable: true })
  statusReason: string | null;

  @Column({ name: 'status_changed_at', type: 'timestamptz', default: () => 'now()' })
  statusChangedAt: Date;

  @Column({ name: 'plan_status', type: 'char', length: 1, nullable: true })
  planStatus: PlanStatus | null;

  @Column({ name: 'delivery_mode', type: 'varchar', length: 16, default: 'exactly-once' })
  deliveryMode: DeliveryMode;

  /** SHA-256 of the portal's application_token: enough to verify events in constant time. */
  @Column({ name: 'application_token_hash', type: 'bytea', nullable: true })
  applicationTokenHash: Buffer | null;

  @Column({ name: 'scope', type: 'varchar', length: 1000, nullable: true })
  scope: string | null;

  @Column({ name: 'installer_user_id', type: 'integer', nullable: true })
  installerUserId: number | null;

  @Column({ name: 'rate_limit_rps', type: 'real', nullable: true })
  rateLimitRps: number | null;

  @Column({ name: 'rate_limit_burst', type: 'integer', nullable: true })
  rateLimitBurst: number | null;

  /** app.info LICENSE_FAMILY (`ent` for Enterprise); null until app.info was read. */
  @Column({ name: 'license_family', type: 'varchar', length: 32, nullable: true })
  licenseFamily: string | null;

  /** app.info VERSION (or ONAPPUPDATE's VERSION once confirmed). */
  @Column({ name: 'app_version', type: 'varchar', length: 32, nullable: true })
  appVersion: string | null;

  /** When a confirmed ONAPPUPDATE last replaced the application token. */
  @Column({ name: 'app_updated_at', type: 'timestamptz', nullable: true })
  appUpdatedAt: Date | null;

  /** app.info STATUS: F free, D demo, T trial, P paid, L local, S subscription. */
  @Column({ name: 'license_status', type: 'varchar', length: 8, nullable: true })
  licenseStatus: string | null;

  /** app.info PAYMENT_EXPIRED, or true after Bitrix24 answered PAYMENT_REQUIRED. */
  @Column({ name: 'license_payment_expired', type: 'boolean', nullable: true })
  licensePaymentExpired: boolean | null;

  /** app.info DAYS: days left of the paid or trial period (negative in the grace period). */
  @Column({ name: 'license_days', type: 'integer', nullable: true })
  licenseDays: number | null;

  @Column({ name: 'license_checked_at', type: 'timestamptz', nullable: true })
  licenseCheckedAt: Date | null;

  /** When the daily app.info read of this portal is due. */
  @Column({ name: 'license_check_due_at', type: 'timestamptz', nullable: true })
  licenseCheckDueAt: Date | null;

  /** The last app.info re-read asked for by an event: at most one per portal per minute. */
  @Column({ name: 'license_read_requested_at', type: 'timestamptz', nullable: true })
  licenseReadRequestedAt: Date | null;

  @Column({ name: 'bound_events', type: 'jsonb', default: () => `'[]'` })
  boundEvents: BoundEvent[];

  @Column({ name: 'bound_at', type: 'timestamptz', nullable: true })
  boundAt: Date | null;

  @Column({ name: 'bound_placements', type: 'jsonb', default: () => `'[]'` })
  boundPlacements: BoundPlacement[];

  /** When placement.get was last diffed against the declared placements (install, rebind, update). */
  @Column({ name: 'placements_synced_at', type: 'timestamptz', nullable: true })
  placementsSyncedAt: Date | null;

  @Column({ name: 'installed_at', type: 'timestamptz', nullable: true })
  installedAt: Date | null;

  @Column({ name: 'uninstalled_at', type: 'timestamptz', nullable: true })
  uninstalledAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
