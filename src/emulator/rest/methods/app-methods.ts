import { PORTAL_UTC_OFFSET_SECONDS } from '../../portals/portal-time';
import type { PortalFeatures } from '../../portals/portal-settings';
import { restErrors } from '../rest-error';
import type { MethodCall, MethodOutcome, RestMethod } from '../rest-method';

/** The emulated app's numeric id on every portal. */
const APP_ID = 1;
const LANGUAGE_ID = 'en';

/** app.info, feature.get, profile (contract §9) and user.admin. */
export const appMethods: Readonly<Record<string, RestMethod>> = {
  'app.info': { scope: null, run: describeApp },
  'feature.get': { scope: null, run: describeFeature },
  profile: { scope: null, run: describeProfile },
  // Scope `basic`, which every app has; any user may ask about themselves.
  'user.admin': { scope: null, run: describeAdminRights },
  // Scope `user_brief` or `basic`: the calling user's own record.
  'user.current': { scope: null, run: describeCurrentUser },
};

function describeApp(call: MethodCall): MethodOutcome {
  if (call.caller.app === null) throw restErrors.accessDenied('Application context required');
  const settings = call.portal.settings;
  const license =
    settings.plan === 'enterprise'
      ? { type: 'ent250', family: 'ent' }
      : { type: 'std', family: 'std' };
  return {
    result: {
      ID: APP_ID,
      CODE: call.emulator.options.clientId,
      VERSION: call.portal.appVersion,
      STATUS: settings.appStatus,
      INSTALLED: call.portal.isInstalled,
      PAYMENT_EXPIRED: settings.paymentExpired ? 'Y' : 'N',
      DAYS: settings.days,
      LANGUAGE_ID,
      LICENSE: `${LANGUAGE_ID}_${license.type}`,
      LICENSE_TYPE: license.type,
      LICENSE_FAMILY: license.family,
    },
  };
}

function describeFeature(call: MethodCall): MethodOutcome {
  const code = call.params.string('CODE');
  // PHP's empty(): '0' counts as empty too.
  if (code === '' || code === '0') throw restErrors.codeEmpty();
  const features: PortalFeatures = call.portal.settings.features;
  const enabled = Object.entries(features).some(([name, on]) => name === code && on);
  return { result: { value: enabled ? 'Y' : 'N' } };
}

function describeProfile(call: MethodCall): MethodOutcome {
  const { userId, isAdmin } = call.caller;
  return {
    result: {
      ID: String(userId),
      ADMIN: isAdmin,
      NAME: isAdmin ? 'Portal' : 'User',
      LAST_NAME: isAdmin ? 'Administrator' : String(userId),
      PERSONAL_GENDER: '',
      TIME_ZONE: '',
      TIME_ZONE_OFFSET: PORTAL_UTC_OFFSET_SECONDS,
    },
  };
}

function describeAdminRights(call: MethodCall): MethodOutcome {
  return { result: call.caller.isAdmin };
}

function describeCurrentUser(call: MethodCall): MethodOutcome {
  const { userId, isAdmin } = call.caller;
  return {
    result: {
      ID: String(userId),
      ACTIVE: true,
      NAME: isAdmin ? 'Portal' : 'User',
      LAST_NAME: isAdmin ? 'Administrator' : String(userId),
      EMAIL: `user${userId}@${call.portal.domain}`,
      TIME_ZONE_OFFSET: PORTAL_UTC_OFFSET_SECONDS,
    },
  };
}
