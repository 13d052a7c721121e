import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { productionNodeOptions } from '../support/app-process';
import { createTestDatabase, TestDatabase } from '../support/postgres';
import { startTestApp, TestApp } from '../support/test-app';

const ROOT = path.resolve(__dirname, '..', '..');

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string };
}

/** PromQL words that are not metric names. */
const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'rate',
  'increase',
  'irate',
  'by',
  'without',
  'offset',
  'histogram_quantile',
  'le',
  'and',
  'or',
  'unless',
  'bool',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'humanizeDuration',
]);

/** Metric names an expression reads: identifiers outside label matchers and range brackets. */
function metricNamesIn(expr: string): string[] {
  const withoutLabels = expr
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without)\s*\([^)]*\)/g, '')
    .replace(/\boffset\s+\w+/g, '');
  const names = withoutLabels.match(/\b[a-z_][a-z0-9_]*\b/g) ?? [];
  return [...new Set(names.filter((name) => !PROMQL_WORDS.has(name)))];
}

/** Every series name /metrics exports, histogram parts included. */
function exportedNames(metricsText: string): Set<string> {
  const names = new Set<string>();
  for (const line of metricsText.split('\n')) {
    const typed = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!typed) continue;
    const [, name, type] = typed;
    names.add(name);
    if (type === 'histogram')
      for (const part of ['_bucket', '_sum', '_count']) names.add(name + part);
  }
  return names;
}

describe('deploy/: Prometheus alert rules and the Grafana dashboard', () => {
  let database: TestDatabase;
  let app: TestApp;
  let exported: Set<string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    app = await startTestApp({ databaseUrl: database.url });
    exported = exportedNames(await (await fetch(`${app.url}/metrics`)).text());
  });

  afterAll(async () => {
    await app?.close();
    await database?.drop();
  });

  it('alert rules are well formed and read only metrics the app exports', () => {
    const file = parse(readFileSync(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as {
      groups: { name: string; rules: AlertRule[] }[];
    };
    const rules = file.groups.flatMap((group) => group.rules);
    expect(rules.length).toBeGreaterThanOrEqual(8);
    const names = rules.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of rules) {
      expect(rule.alert).toMatch(/^[A-Z][A-Za-z0-9]+$/);
      expect(['critical', 'warning', 'info']).toContain(rule.labels.severity);
      expect(rule.annotations.summary.length).toBeGreaterThan(0);
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smhd]$/);
      const metrics = metricNamesIn(rule.expr);
      expect(metrics.length).toBeGreaterThan(0);
      for (const metric of metrics)
        expect({ rule: rule.alert, metric, exported: exported.has(metric) }).toEqual({
          rule: rule.alert,
          metric,
          exported: true,
        });
    }
  });

  it('dashboard panels query only metrics the app exports', () => {
    const dashboard = JSON.parse(
      readFileSync(path.join(ROOT, 'deploy/grafana/bitrix24-app-backend.json'), 'utf8'),
    ) as { uid: string; panels: { id: number; title: string; targets: { expr: string }[] }[] };
    expect(dashboard.uid).toBe('bitrix24-app-backend');
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(panel.targets.length).toBeGreaterThan(0);
      for (const { expr } of panel.targets) {
        for (const metric of metricNamesIn(expr)) {
          expect({ panel: panel.title, metric, exported: exported.has(metric) }).toEqual({
            panel: panel.title,
            metric,
            exported: true,
          });
        }
      }
    }
  });
});

describe('the production server’s Node.js flags', () => {
  it('are the same in `npm run start:prod`, the Docker image and the benchmarks', () => {
    const flags = productionNodeOptions();
    // A heap sized for a small instance: young generation and old-space limit both set.
    expect(flags.some((flag) => flag.startsWith('--max-semi-space-size='))).toBe(true);
    expect(flags.some((flag) => flag.startsWith('--max-old-space-size='))).toBe(true);
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const image = /NODE_OPTIONS="([^"]*)"/.exec(dockerfile);
    expect(image?.[1].split(' ')).toEqual(flags);
  });
});
