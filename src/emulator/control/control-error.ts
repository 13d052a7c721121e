import type { ControlErrorBody } from '../control-contract';

/** A refused control API request: unknown portal, wrong state, bad input. */
export class ControlError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: string,
    readonly description: string,
  ) {
    super(description);
    this.name = 'ControlError';
  }

  toBody(): ControlErrorBody {
    return { error: this.code, error_description: this.description };
  }
}
