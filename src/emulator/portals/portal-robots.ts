/** One robot the app registered with bizproc.robot.add, its fields as sent (upper-case keys). */
export interface RegisteredRobot {
  readonly code: string;
  handler: string;
  authUserId: number;
  /** 'Y', 'N' or '' (left to the user in the designer). */
  useSubscription: string;
  name: unknown;
  description: unknown;
  properties: Record<string, unknown>;
  returnProperties: Record<string, unknown>;
  documentType: unknown;
  filter: unknown;
  usePlacement: string;
  readonly addedAtMs: number;
}

/** A run of a robot the portal started: the event_token it handed out and what it waits for. */
export interface RobotRun {
  readonly eventToken: string;
  readonly code: string;
  readonly workflowId: string;
  readonly documentId: readonly string[];
  /** Only a waiting robot (use_subscription=Y) takes an answer. */
  readonly waits: boolean;
  /** Emulator-clock milliseconds after which the robot stopped waiting; null: no limit. */
  readonly deadlineMs: number | null;
  readonly startedAtMs: number;
}

/** A bizproc.event.send the portal accepted, as `GET …/robot-answers` lists it. */
export interface RobotAnswerRecord {
  readonly eventToken: string;
  readonly code: string;
  readonly documentId: readonly string[];
  readonly returnValues: unknown;
  readonly logMessage: string;
  readonly answeredAt: string;
}

/** Keeps a long run's memory bounded. */
const RUN_LOG_SIZE = 10_000;

/**
 * The app's robots on one portal and the runs they had. CODE is unique per app
 * (`bizproc-robot/index.md`); the emulated portal hosts one app, so per portal.
 */
export class PortalRobots {
  private readonly robots = new Map<string, RegisteredRobot>();
  private readonly runs = new Map<string, RobotRun>();
  private readonly answers: RobotAnswerRecord[] = [];

  add(robot: RegisteredRobot): boolean {
    if (this.robots.has(robot.code)) return false;
    this.robots.set(robot.code, robot);
    return true;
  }

  get(code: string): RegisteredRobot | undefined {
    return this.robots.get(code);
  }

  delete(code: string): boolean {
    return this.robots.delete(code);
  }

  codes(): string[] {
    return [...this.robots.keys()];
  }

  all(): RegisteredRobot[] {
    return [...this.robots.values()].map((robot) => ({ ...robot }));
  }

  /** An app update or removal takes the app's robots off the list (`bizproc-robot-delete.md`). */
  removeAll(): void {
    this.robots.clear();
  }

  startRun(run: RobotRun): void {
    this.runs.set(run.eventToken, run);
    if (this.runs.size > RUN_LOG_SIZE) {
      const oldest = this.runs.keys().next().value;
      if (oldest !== undefined) this.runs.delete(oldest);
    }
  }

  run(eventToken: string): RobotRun | undefined {
    return this.runs.get(eventToken);
  }

  answered(eventToken: string): boolean {
    return this.answers.some((answer) => answer.eventToken === eventToken);
  }

  recordAnswer(answer: RobotAnswerRecord): void {
    this.answers.push(answer);
    if (this.answers.length > RUN_LOG_SIZE) this.answers.shift();
  }

  recordedAnswers(): readonly RobotAnswerRecord[] {
    return this.answers;
  }
}
