import type { CrmEntityType, CrmFields } from '../../crm/crm-records';
import type { MethodParams } from '../method-params';
import { restErrors } from '../rest-error';
import type { MethodCall, MethodOutcome, RestMethod } from '../rest-method';

/**
 * A few CRM writes that make the portal raise the events apps subscribe to. The event data is
 * `{FIELDS: {ID}}`, so repeated updates of one object merge into one offline row.
 */
export const crmMethods: Readonly<Record<string, RestMethod>> = {
  ...entityMethods('deal', 'ONCRMDEAL'),
  ...entityMethods('contact', 'ONCRMCONTACT'),
};

function entityMethods(type: CrmEntityType, eventPrefix: string): Record<string, RestMethod> {
  const raise = (call: MethodCall, action: string, id: number): void => {
    call.emulator.events.raise(call.hit, `${eventPrefix}${action}`, { FIELDS: { ID: String(id) } });
  };
  return {
    [`crm.${type}.add`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const id = call.portal.crm.add(type, readFields(call.params));
        raise(call, 'ADD', id);
        return { result: id };
      },
    },
    [`crm.${type}.update`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const id = readId(call.params);
        if (!call.portal.crm.update(type, id, readFields(call.params))) throw restErrors.notFound();
        raise(call, 'UPDATE', id);
        return { result: true };
      },
    },
    [`crm.${type}.delete`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const id = readId(call.params);
        if (!call.portal.crm.delete(type, id)) throw restErrors.notFound();
        raise(call, 'DELETE', id);
        return { result: true };
      },
    },
    [`crm.${type}.get`]: {
      scope: 'crm',
      run: (call): MethodOutcome => {
        const record = call.portal.crm.get(type, readId(call.params));
        if (record === undefined) throw restErrors.notFound();
        return { result: record };
      },
    },
  };
}

function readId(params: MethodParams): number {
  const id = params.int('ID');
  if (id <= 0) throw restErrors.argument('ID is not defined or invalid.', 'ID');
  return id;
}

function readFields(params: MethodParams): CrmFields {
  const fields = params.get('FIELDS');
  return fields !== null && typeof fields === 'object' && !Array.isArray(fields)
    ? (fields as CrmFields)
    : {};
}
