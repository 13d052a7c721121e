import { Column, Entity, JoinColumn, OneToOne, PrimaryColumn } from 'typeorm';
import { PortalEntity } from './portal.entity';

/**
 * One portal's OAuth token chain. Tokens are AES-256-GCM ciphertexts tagged with the key id.
 * The row is the refresh lock: whoever refreshes holds `SELECT … FOR UPDATE` on it.
 */
@Entity({ name: 'portal_tokens' })
export class PortalTokenEntity {
  @PrimaryColumn({
    name: 'member_id',
    type: 'varchar',
    length: 64,
    primaryKeyConstraintName: 'pk_portal_tokens',
  })
  memberId: string;

  @OneToOne(() => PortalEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'member_id', foreignKeyConstraintName: 'fk_portal_tokens_portal' })
  portal?: PortalEntity;

  @Column({ name: 'access_token', type: 'text', nullable: true })
  accessToken: string | null;

  @Column({ name: 'refresh_token', type: 'text', nullable: true })
  refreshToken: string | null;

  @Column({ name: 'access_expires_at', type: 'timestamptz', nullable: true })
  accessExpiresAt: Date | null;

  /** Our estimate: issued time plus REFRESH_TOKEN_LIFETIME_DAYS; the keep-alive refreshes before it. */
  @Column({ name: 'refresh_expires_at', type: 'timestamptz', nullable: true })
  refreshExpiresAt: Date | null;

  @Column({ name: 'refreshed_at', type: 'timestamptz', nullable: true })
  refreshedAt: Date | null;

  /** Bumped on every rotation, so a waiter can tell that a sibling already refreshed. */
  @Column({ name: 'generation', type: 'integer', default: 0 })
  generation: number;

  @Column({ name: 'key_id', type: 'varchar', length: 32, nullable: true })
  keyId: string | null;
}
