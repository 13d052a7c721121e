import type { INestApplicationContext } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { OAuthTokenResponse } from '../../src/bitrix24/bitrix24.types';
import { OAuthClient } from '../../src/bitrix24/oauth.client';
import type { CreatePortalRequest, CreatedPortal, RunningEmulator } from '../../src/emulator';
import { hashApplicationToken } from '../../src/portals/installation.service';
import { PLAN_STATUSES, PlanStatus, PortalStatus } from '../../src/portals/portal-status';
import { PortalEntity } from '../../src/portals/portal.entity';
import { TokenVault } from '../../src/portals/token-vault.service';
import type { TestApp } from './test-app';

export interface DirectInstallOptions {
  /** Passed to the emulator's createPortal (plan, features, paymentAllowed, …). */
  portal?: CreatePortalRequest;
  /** The status the portal row starts in; default 'active'. */
  status?: PortalStatus;
  /** Per-portal rate-limit override columns. */
  rateLimit?: { rps: number; burst: number };
  /** Call the emulator's installFinish (INSTALLED=Y); default true. */
  finishInstall?: boolean;
}

export interface DirectlyInstalledPortal extends CreatedPortal {
  /** The chain as stored (its refresh token is the live one until the app refreshes). */
  tokens: OAuthTokenResponse;
}

/**
 * A portal with a live token chain in the database, without going through the install endpoint:
 * the emulator creates the portal and hands out an install form, its REFRESH_ID is exchanged at
 * the emulator's OAuth server with the app's own OAuthClient, and the portal row and the encrypted
 * chain are written through the repository and the TokenVault. No event is bound.
 */
export async function installPortalDirectly(
  emulator: RunningEmulator,
  target: TestApp | INestApplicationContext,
  options: DirectInstallOptions = {},
): Promise<DirectlyInstalledPortal> {
  const context = 'app' in target ? target.app : target;
  const created = await emulator.control.createPortal(options.portal ?? {});
  const { form } = await emulator.control.install(created.memberId, { mode: 'ui' });
  if (options.finishInstall ?? true) await emulator.control.finishInstall(created.memberId);
  const tokens = await context.get(OAuthClient).refresh(form.REFRESH_ID);
  await context
    .get(DataSource)
    .getRepository(PortalEntity)
    .insert({
      memberId: created.memberId,
      domain: new URL(tokens.client_endpoint).host,
      clientEndpoint: tokens.client_endpoint,
      serverEndpoint: tokens.server_endpoint,
      status: options.status ?? 'active',
      statusReason: 'installed directly by a test fixture',
      planStatus: (PLAN_STATUSES as readonly string[]).includes(tokens.status)
        ? (tokens.status as PlanStatus)
        : null,
      applicationTokenHash: hashApplicationToken(created.applicationToken),
      scope: tokens.scope,
      installerUserId: tokens.user_id ?? null,
      rateLimitRps: options.rateLimit?.rps ?? null,
      rateLimitBurst: options.rateLimit?.burst ?? null,
      installedAt: new Date(),
    });
  await context.get(TokenVault).storeChain(created.memberId, tokens);
  return { ...created, tokens };
}
