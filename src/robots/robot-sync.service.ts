import { Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { Bitrix24ApiError } from '../bitrix24/bitrix24-api.error';
import { Bitrix24Client } from '../bitrix24/bitrix24.client';
import { AppConfig } from '../config/app-config';
import { AppLogger } from '../logging/app-logger';
import { EventBindingService } from '../portals/event-binding.service';
import { robotDigest, robotFields } from './robot-definition';
import { RobotRegistry } from './robot-registry.service';

export interface RobotReport {
  added: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
}

/**
 * Keeps a portal's robots as declared in code: bizproc.robot.list (codes only) against the
 * declarations and the digest of what we last registered; add what is missing, update what
 * changed, delete codes the code no longer declares. Run at install, on ONAPPUPDATE and on rebind
 * (a step of the event binding), so running it again changes nothing.
 */
@Injectable()
export class RobotSync {
  private readonly log: Logger;

  constructor(
    private readonly dataSource: DataSource,
    private readonly bitrix24: Bitrix24Client,
    private readonly config: AppConfig,
    private readonly registry: RobotRegistry,
    bindings: EventBindingService,
    appLogger: AppLogger,
  ) {
    this.log = appLogger.child('robots');
    bindings.addStep((memberId) => this.sync(memberId));
  }

  handlerUrl(code: string): string {
    return `${this.config.appBaseUrl.replace(/\/+$/, '')}/bitrix24/robots/${encodeURIComponent(code)}`;
  }

  async sync(memberId: string): Promise<RobotReport> {
    const report: RobotReport = { added: [], updated: [], unchanged: [], deleted: [] };
    const declared = this.registry.declarations();
    const known = await this.digests(memberId);
    // An app without robots needs no bizproc scope: nothing is asked until one is declared.
    if (declared.length === 0 && known.size === 0) return report;
    const portal = this.bitrix24.forPortal(memberId);
    let codes: string[];
    try {
      codes = (await portal.call<string[]>('bizproc.robot.list')).result ?? [];
    } catch (error) {
      // A portal that did not grant bizproc can have no robots; its events still work.
      if (error instanceof Bitrix24ApiError && error.bitrixCode === 'insufficient_scope') {
        this.log.error(
          { memberId, robots: declared.length },
          'robots not installed: the app has no bizproc scope on this portal',
        );
        return report;
      }
      throw error;
    }
    const listed = new Set(codes);
    for (const declaration of declared) {
      const { code } = declaration;
      const fields = robotFields(declaration, this.handlerUrl(code));
      const digest = robotDigest(fields);
      if (!listed.has(code)) {
        try {
          await portal.call('bizproc.robot.add', { CODE: code, ...fields });
          report.added.push(code);
        } catch (error) {
          // Listed a moment ago by another replica's run: bring it up to date instead.
          if (
            !(error instanceof Bitrix24ApiError) ||
            error.bitrixCode !== 'ERROR_ACTIVITY_ALREADY_INSTALLED'
          ) {
            throw error;
          }
          await portal.call('bizproc.robot.update', { CODE: code, FIELDS: fields });
          report.updated.push(code);
        }
      } else if (known.get(code) !== digest) {
        await portal.call('bizproc.robot.update', { CODE: code, FIELDS: fields });
        report.updated.push(code);
      } else {
        report.unchanged.push(code);
        continue;
      }
      await this.remember(memberId, code, digest);
    }
    // The list holds only this app's robots: a code we no longer declare is ours to remove.
    for (const code of listed) {
      if (declared.some((declaration) => declaration.code === code)) continue;
      try {
        await portal.call('bizproc.robot.delete', { CODE: code });
      } catch (error) {
        if (
          !(error instanceof Bitrix24ApiError) ||
          error.bitrixCode !== 'ERROR_ACTIVITY_NOT_FOUND'
        ) {
          throw error;
        }
      }
      report.deleted.push(code);
    }
    await this.dataSource.query(
      `DELETE FROM installed_robots WHERE member_id = $1 AND NOT (code = ANY($2::varchar[]))`,
      [memberId, declared.map((declaration) => declaration.code)],
    );
    this.log.info(
      {
        memberId,
        added: report.added.length,
        updated: report.updated.length,
        unchanged: report.unchanged.length,
        deleted: report.deleted.length,
      },
      'robots in place',
    );
    return report;
  }

  private async digests(memberId: string): Promise<Map<string, string>> {
    const rows: { code: string; definition_sha256: string }[] = await this.dataSource.query(
      `SELECT code, definition_sha256 FROM installed_robots WHERE member_id = $1`,
      [memberId],
    );
    return new Map(rows.map((row) => [row.code, row.definition_sha256]));
  }

  private async remember(memberId: string, code: string, digest: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO installed_robots (member_id, code, definition_sha256) VALUES ($1, $2, $3)
       ON CONFLICT (member_id, code)
       DO UPDATE SET definition_sha256 = EXCLUDED.definition_sha256, installed_at = now()`,
      [memberId, code, digest],
    );
  }
}
