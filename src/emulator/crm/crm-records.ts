export type CrmEntityType = 'deal' | 'contact';

export type CrmFields = Readonly<Record<string, unknown>>;

/** The few CRM objects the emulated portal stores, so CRM methods can produce real events. */
export class CrmRecords {
  private readonly lastIds: Record<CrmEntityType, number> = { deal: 0, contact: 0 };
  private readonly records: Record<CrmEntityType, Map<number, CrmFields>> = {
    deal: new Map(),
    contact: new Map(),
  };

  add(type: CrmEntityType, fields: CrmFields): number {
    const id = ++this.lastIds[type];
    this.records[type].set(id, { ...fields, ID: String(id) });
    return id;
  }

  update(type: CrmEntityType, id: number, fields: CrmFields): boolean {
    const existing = this.records[type].get(id);
    if (existing === undefined) return false;
    this.records[type].set(id, { ...existing, ...fields, ID: String(id) });
    return true;
  }

  delete(type: CrmEntityType, id: number): boolean {
    return this.records[type].delete(id);
  }

  get(type: CrmEntityType, id: number): CrmFields | undefined {
    return this.records[type].get(id);
  }

  /** Every record of a type, in ID order (ids only grow, so insertion order is ID order). */
  all(type: CrmEntityType): CrmFields[] {
    return [...this.records[type].values()];
  }
}
