import type { DataSource } from 'typeorm';
import type { AppInfo } from '../bitrix24/bitrix24.types';
import { PortalEntity } from './portal.entity';

/**
 * Where a portal stands with the app's license, in one word:
 * `paid` (STATUS P or S, not expired), `trial` (T or D), `free` (F), `local` (L, a local app),
 * `expired` (PAYMENT_EXPIRED=Y, or Bitrix24 answered PAYMENT_REQUIRED), `unknown` (not read yet).
 */
export const LICENSE_STATES = ['paid', 'trial', 'free', 'local', 'expired', 'unknown'] as const;
export type LicenseState = (typeof LICENSE_STATES)[number];

/** The license as app.info last told it (contract §9, §11), with when that was. */
export interface PortalLicense {
  /** app.info STATUS letter. */
  readonly status: string | null;
  readonly paymentExpired: boolean | null;
  /** app.info DAYS: days left of the paid or trial period; negative in the grace period. */
  readonly daysLeft: number | null;
  /** app.info LICENSE_FAMILY (the portal's Bitrix24 plan family, `ent` for Enterprise). */
  readonly family: string | null;
  readonly checkedAt: Date | null;
  readonly state: LicenseState;
  /** True when the app is paid for on the portal (state `paid`). */
  readonly paid: boolean;
}

/** The stored columns a license is read from. */
export interface LicenseColumns {
  licenseStatus: string | null;
  licensePaymentExpired: boolean | null;
  licenseDays: number | null;
  licenseFamily: string | null;
  licenseCheckedAt: Date | null;
}

export function licenseStateOf(columns: LicenseColumns): LicenseState {
  if (columns.licensePaymentExpired === true) return 'expired';
  if (columns.licenseCheckedAt === null) return 'unknown';
  switch (columns.licenseStatus) {
    case 'P':
    case 'S':
      return 'paid';
    case 'T':
    case 'D':
      return 'trial';
    case 'F':
      return 'free';
    case 'L':
      return 'local';
    default:
      return 'unknown';
  }
}

export function licenseOf(columns: LicenseColumns): PortalLicense {
  const state = licenseStateOf(columns);
  return {
    status: columns.licenseStatus,
    paymentExpired: columns.licensePaymentExpired,
    daysLeft: columns.licenseDays,
    family: columns.licenseFamily,
    checkedAt: columns.licenseCheckedAt,
    state,
    paid: state === 'paid',
  };
}

/**
 * SQL condition (on table alias `p`) for portals in a license state; it must agree with
 * licenseStateOf (test/portals/lifecycle.e2e-spec.ts compares the two over every combination).
 */
export function licenseStateCondition(state: LicenseState, alias = 'p'): string {
  const expired = `${alias}.license_payment_expired IS TRUE`;
  const notExpired = `${alias}.license_payment_expired IS NOT TRUE`;
  const checked = `${alias}.license_checked_at IS NOT NULL`;
  const status = `${alias}.license_status`;
  switch (state) {
    case 'expired':
      return expired;
    case 'paid':
      return `(${notExpired} AND ${checked} AND ${status} IN ('P','S'))`;
    case 'trial':
      return `(${notExpired} AND ${checked} AND ${status} IN ('T','D'))`;
    case 'free':
      return `(${notExpired} AND ${checked} AND ${status} = 'F')`;
    case 'local':
      return `(${notExpired} AND ${checked} AND ${status} = 'L')`;
    case 'unknown':
      return `(${notExpired} AND (${alias}.license_checked_at IS NULL OR ${status} IS NULL OR ${status} NOT IN ('P','S','T','D','F','L')))`;
  }
}

/** The columns an app.info answer sets; anything of an unexpected type is stored as unknown. */
export function licenseColumnsFrom(info: AppInfo): Omit<LicenseColumns, 'licenseCheckedAt'> & {
  appVersion: string | null;
} {
  const text = (value: unknown, max: number): string | null =>
    typeof value === 'string' && value !== ''
      ? value.slice(0, max)
      : typeof value === 'number' && Number.isFinite(value)
        ? String(value).slice(0, max)
        : null;
  const days =
    typeof info.DAYS === 'number' && Number.isSafeInteger(info.DAYS)
      ? info.DAYS
      : typeof info.DAYS === 'string' && /^-?\d{1,9}$/.test(info.DAYS)
        ? Number(info.DAYS)
        : null;
  const expired = info.PAYMENT_EXPIRED === 'Y' ? true : info.PAYMENT_EXPIRED === 'N' ? false : null;
  return {
    appVersion: text(info.VERSION, 32),
    licenseStatus: text(info.STATUS, 8),
    licensePaymentExpired: expired,
    licenseDays: days,
    licenseFamily: text(info.LICENSE_FAMILY, 32),
  };
}

/** The stored license of a portal; null for a portal we do not know. */
export async function readStoredLicense(
  dataSource: DataSource,
  memberId: string,
): Promise<PortalLicense | null> {
  const portal = await dataSource.getRepository(PortalEntity).findOne({
    select: {
      memberId: true,
      licenseStatus: true,
      licensePaymentExpired: true,
      licenseDays: true,
      licenseFamily: true,
      licenseCheckedAt: true,
    },
    where: { memberId },
  });
  return portal ? licenseOf(portal) : null;
}
