import { DomainError } from '../errors/domain-error';

export enum RobotErrorCode {
  MalformedRobotRun = 'malformed_robot_run',
  UnknownRobot = 'unknown_robot',
}

/** The body is not a robot run as Bitrix24 posts it. */
export class MalformedRobotRunError extends DomainError {
  readonly kind = 'invalid_input';

  constructor(message: string) {
    super(RobotErrorCode.MalformedRobotRun, message);
  }
}

/** A POST to the handler URL of a robot the app does not declare. */
export class UnknownRobotError extends DomainError {
  readonly kind = 'not_found';

  constructor(code: string) {
    super(RobotErrorCode.UnknownRobot, `No robot ${code.slice(0, 100)} is declared`);
  }
}
