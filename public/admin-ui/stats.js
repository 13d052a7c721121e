import { api, describeError } from './api.js';
import { duration, facts, fill, h, table, when } from './dom.js';
import { href } from './router.js';

/** How often the page reads /admin/stats while it is open. */
export const POLL_SECONDS = 10;
/** Backlog samples kept in this tab (an hour at the poll rate); lost when the tab closes. */
const WINDOW_SECONDS = 3600;
const backlog = [];

/**
 * #/stats — counts, plus two charts: drain throughput per minute over the last hour (computed by
 * the API from stored events) and inbox backlog over time (sampled by this page from each poll).
 * Answers a stop function that ends the polling when the operator leaves the page.
 */
export function renderStats(view) {
  const summary = h('div', { id: 'stats-summary' }, h('p', { class: 'muted' }, 'Loading…'));
  const throughputChart = h('div', { id: 'chart-throughput', class: 'chart' });
  const backlogChart = h('div', { id: 'chart-backlog', class: 'chart' });
  const status = h('p', { class: 'muted', id: 'stats-updated' });
  fill(
    view,
    h('h1', {}, 'Stats'),
    status,
    h(
      'div',
      { class: 'columns' },
      h(
        'section',
        {},
        h('h2', {}, 'Drain throughput'),
        h('p', { class: 'muted' }, 'Offline events stored per minute, last 60 minutes'),
        throughputChart,
      ),
      h(
        'section',
        {},
        h('h2', {}, 'Inbox backlog'),
        h(
          'p',
          { class: 'muted' },
          `Events waiting for handlers, sampled every ${POLL_SECONDS} s while this page is open`,
        ),
        backlogChart,
      ),
    ),
    summary,
  );

  let stopped = false;
  let timer;
  const charts = { throughput: null, backlog: null };
  const poll = async () => {
    try {
      const stats = await api('GET', '/admin/stats', { query: { minutes: 60, top: 10 } });
      if (stopped) return;
      sample(stats);
      status.textContent = `Updated ${when(stats.generatedAt)}`;
      drawCharts(charts, stats, throughputChart, backlogChart);
      fill(summary, summaryOf(stats));
    } catch (error) {
      if (!stopped) status.textContent = `Could not read stats: ${describeError(error)}`;
    }
    if (!stopped) timer = setTimeout(poll, POLL_SECONDS * 1000);
  };
  void poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    charts.throughput?.destroy();
    charts.backlog?.destroy();
  };
}

function sample(stats) {
  const at = Math.floor(new Date(stats.generatedAt).getTime() / 1000);
  const counts = stats.events.byStatus;
  backlog.push({ at, pending: counts.pending, failed: counts.failed, dead: counts.dead });
  while (backlog.length > 0 && backlog[0].at < at - WINDOW_SECONDS) backlog.shift();
}

const chartSize = (element) => ({ width: Math.max(320, element.clientWidth || 520), height: 220 });

function drawCharts(charts, stats, throughputElement, backlogElement) {
  const uPlot = window.uPlot;
  const perMinute = stats.drainThroughput.perMinute;
  const throughputData = [
    perMinute.map((bucket) => new Date(bucket.minute).getTime() / 1000),
    perMinute.map((bucket) => bucket.events),
  ];
  const backlogData = [
    backlog.map((point) => point.at),
    backlog.map((point) => point.pending),
    backlog.map((point) => point.failed),
    backlog.map((point) => point.dead),
  ];
  if (!charts.throughput) {
    charts.throughput = new uPlot(
      {
        ...chartSize(throughputElement),
        series: [
          {},
          {
            label: 'events / min',
            stroke: '#2563eb',
            fill: 'rgba(37, 99, 235, 0.15)',
            paths: uPlot.paths.bars({ size: [0.8, 40] }),
          },
        ],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      throughputData,
      throughputElement,
    );
    charts.backlog = new uPlot(
      {
        ...chartSize(backlogElement),
        series: [
          {},
          { label: 'pending', stroke: '#d97706' },
          { label: 'failed', stroke: '#dc2626' },
          { label: 'dead', stroke: '#7c3aed' },
        ],
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      },
      backlogData,
      backlogElement,
    );
  } else {
    charts.throughput.setData(throughputData);
    charts.backlog.setData(backlogData);
  }
}

function summaryOf(stats) {
  const events = stats.events;
  return [
    h(
      'div',
      { class: 'columns' },
      h(
        'section',
        { id: 'event-counts' },
        h('h2', {}, 'Events'),
        facts([
          ['Total', String(events.total)],
          ...Object.entries(events.byStatus).map(([status, count]) => [status, String(count)]),
          ['Objects held by a dead event', String(events.blockedObjects)],
          [
            'Oldest waiting',
            events.oldestPending
              ? `${duration(events.oldestPending.ageSeconds)} (event ${events.oldestPending.id})`
              : '–',
          ],
        ]),
        h('p', {}, h('a', { href: '#/events' }, 'Dead letters →')),
      ),
      h(
        'section',
        { id: 'portal-counts' },
        h('h2', {}, 'Portals'),
        facts([
          ['Total', String(stats.portals.total)],
          ...Object.entries(stats.portals.byStatus).map(([status, count]) => [
            status,
            h('a', { href: href('/portals', { status }) }, String(count)),
          ]),
        ]),
      ),
      h(
        'section',
        { id: 'drain-counts' },
        h('h2', {}, 'Drains'),
        facts([
          ['Events in the last hour', String(stats.drainThroughput.events)],
          ['Events per second', String(stats.drainThroughput.eventsPerSecond)],
          ['Waiting to start', String(stats.drains.waiting)],
          ['Running', String(stats.drains.running)],
          ['Last one failed', String(stats.drains.lastFailed)],
          ['Uncleared batches', String(stats.drains.unclearedBatches)],
        ]),
      ),
    ),
    h('h2', {}, 'Portals with the most waiting events'),
    stats.topPortalsByPending.length === 0
      ? h('p', { class: 'muted' }, 'Nothing waits.')
      : table(['Portal', 'Pending', 'Failed', 'Dead'], stats.topPortalsByPending, (row) => [
          h('a', { href: href(`/portals/${encodeURIComponent(row.memberId)}`) }, row.memberId),
          String(row.pending),
          String(row.failed),
          String(row.dead),
        ]),
  ];
}
