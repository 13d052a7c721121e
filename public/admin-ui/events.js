import { api, describeError } from './api.js';
import { ago, badge, confirmDialog, facts, fill, h, table, when } from './dom.js';
import { input, pagerBar, select } from './portals.js';
import { href, navigate, pager } from './router.js';

export const EVENT_STATUSES = ['pending', 'processed', 'failed', 'dead', 'unhandled', 'discarded'];
const EVENT_SOURCES = ['offline', 'online'];
const PAGE_SIZE = 50;

/** datetime-local text (local time) ⇄ ISO-8601 for the API. */
const toIso = (local) => (local ? new Date(local).toISOString() : '');
function toLocal(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/**
 * #/events — dead letters first: the default view lists only dead events (the ones holding their
 * object's later events); "All events" lists every status with the full filter set.
 */
export async function renderEvents(view, params) {
  const dead = params.view !== 'all';
  const filters = {
    view: dead ? '' : 'all',
    memberId: params.memberId ?? '',
    eventName: params.eventName ?? '',
    status: dead ? '' : (params.status ?? ''),
    source: params.source ?? '',
    since: params.since ?? '',
    until: params.until ?? '',
  };
  const form = h(
    'form',
    {
      id: 'event-filters',
      class: 'filters',
      onsubmit: (event) => {
        event.preventDefault();
        const values = Object.fromEntries(new FormData(form));
        navigate('/events', {
          ...values,
          view: filters.view,
          since: toIso(values.since),
          until: toIso(values.until),
        });
      },
    },
    input('memberId', 'Portal (member id)', filters.memberId),
    input('eventName', 'Event name', filters.eventName, { placeholder: 'ONCRMDEALUPDATE' }),
    dead ? null : select('status', 'Status', EVENT_STATUSES, filters.status),
    select('source', 'Source', EVENT_SOURCES, filters.source),
    input('since', 'Received since', toLocal(filters.since), { type: 'datetime-local' }),
    input('until', 'until', toLocal(filters.until), { type: 'datetime-local' }),
    h('button', { type: 'submit', id: 'apply-filters' }, 'Apply'),
  );
  const tabFilters = { memberId: filters.memberId, eventName: filters.eventName };
  const tabs = h(
    'nav',
    { class: 'tabs' },
    h(
      'a',
      { href: href('/events', tabFilters), id: 'tab-dead', class: dead ? 'current' : '' },
      'Dead letters',
    ),
    h(
      'a',
      {
        href: href('/events', { ...tabFilters, view: 'all' }),
        id: 'tab-all',
        class: dead ? '' : 'current',
      },
      'All events',
    ),
  );
  const results = h('div', { id: 'event-results' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(view, h('h1', {}, 'Events'), tabs, form, results);

  let page;
  try {
    page = await api('GET', '/admin/events', {
      query: {
        memberId: filters.memberId,
        eventName: filters.eventName,
        status: dead ? 'dead' : filters.status,
        source: filters.source,
        since: filters.since,
        until: filters.until,
        limit: PAGE_SIZE,
        cursor: params.cursor,
      },
    });
  } catch (error) {
    fill(results, h('p', { class: 'error', role: 'alert' }, describeError(error)));
    return;
  }
  const paging = pager({
    list: 'events',
    filters,
    cursor: params.cursor,
    nextCursor: page.nextCursor,
    path: '/events',
    shown: page.items.length,
  });
  fill(
    results,
    page.items.length === 0
      ? h('p', { class: 'muted', id: 'no-events' }, dead ? 'No dead letters.' : 'No events match.')
      : table(
          ['Id', 'Received', 'Portal', 'Event', 'Source', 'Status', 'Attempts', 'Last error'],
          page.items,
          (event) => [
            h('a', { href: href(`/events/${event.id}`) }, event.id),
            h('span', { title: when(event.receivedAt) }, ago(event.receivedAt)),
            h(
              'a',
              { href: href(`/portals/${encodeURIComponent(event.memberId)}`) },
              event.memberId.slice(0, 12),
            ),
            event.eventName,
            event.source,
            badge(event.status),
            String(event.attempts),
            h('span', { class: 'clip' }, event.lastError ?? ''),
          ],
          (event) => ({ class: 'event-row', dataset: { eventId: event.id, status: event.status } }),
        ),
    pagerBar(paging, 'events'),
  );
}

/** #/events/<id> — one event: its (masked) payload, its history, replay and discard. */
export async function renderEvent(view, id, notice) {
  fill(view, h('p', { class: 'muted' }, 'Loading…'));
  let event;
  try {
    event = await api('GET', `/admin/events/${encodeURIComponent(id)}`);
  } catch (error) {
    fill(view, h('p', { class: 'error', role: 'alert' }, describeError(error)));
    return;
  }
  const message = h('p', { id: 'action-result', class: 'result', hidden: !notice }, notice ?? '');
  const act = async (button, verb, path) => {
    button.disabled = true;
    try {
      const after = await api('POST', path);
      await renderEvent(view, id, `${verb}: status is now ${after.status}`);
    } catch (error) {
      message.hidden = false;
      message.className = 'result error';
      message.textContent = `${verb} failed: ${describeError(error)}`;
      button.disabled = false;
    }
  };
  const replay = h('button', {
    type: 'button',
    id: 'action-replay',
    onclick: () => act(replay, 'Replayed', `/admin/events/${event.id}/replay`),
  });
  replay.textContent = 'Replay';
  const discardable = event.status === 'dead' || event.status === 'unhandled';
  const discard = h('button', {
    type: 'button',
    id: 'action-discard',
    class: 'danger',
    onclick: async () => {
      const confirmed = await confirmDialog(
        `Discard event ${event.id}? It stays stored as discarded and its object's later events go on.`,
        'Discard',
      );
      if (confirmed) await act(discard, 'Discarded', `/admin/events/${event.id}/discard`);
    },
  });
  discard.textContent = 'Discard…';

  fill(
    view,
    h(
      'p',
      {},
      h('a', { href: '#/events' }, '← Dead letters'),
      ' · ',
      h('a', { href: '#/events?view=all' }, 'All events'),
    ),
    h('h1', {}, `Event ${event.id} `, h('span', { id: 'event-status' }, badge(event.status))),
    h('div', { class: 'actions' }, replay, discardable ? discard : null),
    message,
    facts([
      ['Event', event.eventName],
      [
        'Portal',
        h('a', { href: href(`/portals/${encodeURIComponent(event.memberId)}`) }, event.memberId),
      ],
      ['Source', event.source],
      ['Received', when(event.receivedAt)],
      ['Bitrix24 timestamp', when(event.bitrixTimestamp)],
      ['Attempts', String(event.attempts)],
      ['Next attempt', when(event.nextAttemptAt)],
      ['Processed', when(event.processedAt)],
      ['Last error', event.lastError],
      ['Queue row', event.queueId],
      ['Batch (process_id)', event.processId],
      ['Ordering key', event.orderingKey],
    ]),
    h('h2', {}, 'Payload'),
    h(
      'p',
      { class: 'muted' },
      'As the API answers it: credential fields are masked by the server.',
    ),
    h('pre', { id: 'payload', class: 'payload' }, JSON.stringify(event.data, null, 2)),
    event.additional
      ? [
          h('h2', {}, 'Additional'),
          h('pre', { class: 'payload' }, JSON.stringify(event.additional, null, 2)),
        ]
      : null,
    h('h2', {}, 'Processing history'),
    event.history.length === 0
      ? h('p', { class: 'muted' }, 'No runs yet.')
      : h(
          'div',
          { id: 'event-history' },
          table(
            ['#', 'Trigger', 'Outcome', 'Handlers', 'Error', 'Started', 'Finished'],
            event.history,
            (run) => [
              String(run.attempt),
              run.trigger,
              badge(run.outcome),
              run.handlers.join(', '),
              run.error ?? '',
              when(run.startedAt),
              when(run.finishedAt),
            ],
          ),
        ),
  );
}
