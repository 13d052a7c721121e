import { batchMethod } from './batch';
import { appMethods } from './methods/app-methods';
import { bizprocMethods } from './methods/bizproc-methods';
import { crmMethods } from './methods/crm-methods';
import { eventMethods } from './methods/event-methods';
import { offlineEventMethods } from './methods/offline-event-methods';
import { placementMethods } from './methods/placement-methods';
import type { RestMethod } from './rest-method';

/** Every REST method the emulated portal answers, by lower-case name. */
export const REST_METHODS: ReadonlyMap<string, RestMethod> = new Map(
  Object.entries({
    ...eventMethods,
    ...offlineEventMethods,
    ...appMethods,
    ...crmMethods,
    ...placementMethods,
    ...bizprocMethods,
    batch: batchMethod,
  }),
);
