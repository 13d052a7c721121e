import { phpIntval, phpString } from './php-values';

/**
 * A method's parameters with Bitrix's case-insensitive keys (`array_change_key_case`): look them
 * up by their upper-case name.
 */
export class MethodParams {
  private readonly values = new Map<string, unknown>();

  constructor(raw: Readonly<Record<string, unknown>>) {
    for (const [key, value] of Object.entries(raw)) this.values.set(key.toUpperCase(), value);
  }

  /** PHP `isset`: present and not null. */
  has(name: string): boolean {
    const value = this.values.get(name);
    return value !== undefined && value !== null;
  }

  get(name: string): unknown {
    return this.values.get(name);
  }

  string(name: string): string {
    return phpString(this.values.get(name));
  }

  int(name: string): number {
    return phpIntval(this.values.get(name));
  }
}
