import { api, describeError } from './api.js';
import { ago, badge, confirmDialog, duration, facts, fill, h, table, when } from './dom.js';
import { href, navigate, pager } from './router.js';

export const PORTAL_STATUSES = [
  'new',
  'active',
  'needs_reinstall',
  'payment_required',
  'uninstalled',
  'deleted',
];
export const LICENSE_STATES = ['paid', 'trial', 'free', 'local', 'expired', 'unknown'];
export const DELIVERY_MODES = ['exactly-once', 'at-most-once'];
const PAGE_SIZE = 50;

export function select(name, label, options, value) {
  return h(
    'label',
    {},
    label,
    h(
      'select',
      { name, id: `filter-${name}` },
      h('option', { value: '' }, 'any'),
      options.map((option) => h('option', { value: option, selected: option === value }, option)),
    ),
  );
}

export function input(name, label, value, attributes = {}) {
  return h(
    'label',
    {},
    label,
    h('input', { name, id: `filter-${name}`, value: value ?? '', ...attributes }),
  );
}

/** The "page N · Previous · Next" bar under a list. */
export function pagerBar(paging, noun) {
  return h(
    'nav',
    { class: 'pager' },
    h('span', { id: 'page-info' }, `Page ${paging.pageNumber} · ${paging.shown} ${noun}`),
    paging.previousHref
      ? h('a', { href: paging.previousHref, id: 'page-previous' }, '← Previous')
      : null,
    paging.next
      ? h('button', { type: 'button', id: 'page-next', onclick: paging.next }, 'Next →')
      : h('span', { class: 'muted', id: 'page-last' }, 'last page'),
  );
}

function lastDrainCell(portal) {
  const drain = portal.lastDrain;
  if (!drain) return h('span', { class: 'muted' }, 'never');
  return h(
    'span',
    { title: when(drain.finishedAt ?? drain.startedAt) },
    badge(drain.outcome ?? 'running'),
    ` ${drain.events} ev · ${ago(drain.finishedAt ?? drain.startedAt)}`,
  );
}

function healthCell(portal) {
  const failures = portal.drainHealth.consecutiveFailures;
  if (portal.drainHealth.inTrouble) return badge(`${failures} failures`, 'dead');
  if (failures > 0) return badge(`${failures} failed`, 'failed');
  return badge('ok');
}

/** #/portals — one page of portals at a time, filtered server-side. */
export async function renderPortals(view, params) {
  const filters = {
    status: params.status ?? '',
    license: params.license ?? '',
    deliveryMode: params.deliveryMode ?? '',
    q: params.q ?? '',
  };
  const form = h(
    'form',
    {
      id: 'portal-filters',
      class: 'filters',
      onsubmit: (event) => {
        event.preventDefault();
        navigate('/portals', Object.fromEntries(new FormData(form)));
      },
    },
    input('q', 'Search domain or member id', filters.q, {
      type: 'search',
      placeholder: 'prefix, e.g. acme',
    }),
    select('status', 'Status', PORTAL_STATUSES, filters.status),
    select('license', 'License', LICENSE_STATES, filters.license),
    select('deliveryMode', 'Delivery', DELIVERY_MODES, filters.deliveryMode),
    h('button', { type: 'submit', id: 'apply-filters' }, 'Apply'),
  );
  const results = h('div', { id: 'portal-results' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(view, h('h1', {}, 'Portals'), form, results);

  let page;
  try {
    page = await api('GET', '/admin/portals', {
      query: { ...filters, limit: PAGE_SIZE, cursor: params.cursor },
    });
  } catch (error) {
    fill(results, h('p', { class: 'error', role: 'alert' }, describeError(error)));
    return;
  }
  const paging = pager({
    list: 'portals',
    filters,
    cursor: params.cursor,
    nextCursor: page.nextCursor,
    path: '/portals',
    shown: page.items.length,
  });
  fill(
    results,
    page.items.length === 0
      ? h('p', { class: 'muted', id: 'no-portals' }, 'No portals match.')
      : table(
          [
            'Member id',
            'Domain',
            'Status',
            'License',
            'Delivery',
            'Token',
            'Lag',
            'Last drain',
            'Drains',
          ],
          page.items,
          (portal) => [
            h(
              'a',
              { href: href(`/portals/${encodeURIComponent(portal.memberId)}`) },
              portal.memberId,
            ),
            portal.domain,
            badge(portal.status),
            portal.license.state,
            portal.deliveryMode,
            badge(portal.token.health),
            portal.lagSeconds > 0 ? badge(duration(portal.lagSeconds), 'failed') : '0',
            lastDrainCell(portal),
            healthCell(portal),
          ],
          (portal) => ({ class: 'portal-row', dataset: { memberId: portal.memberId } }),
        ),
    pagerBar(paging, 'portals'),
  );
}

const ACTIONS = [
  { id: 'drain', label: 'Drain now', method: 'POST', path: 'drain' },
  { id: 'rebind', label: 'Rebind events', method: 'POST', path: 'rebind' },
  { id: 'refresh-token', label: 'Refresh token', method: 'POST', path: 'refresh-token' },
];

/** #/portals/<memberId> — one portal, its history and its levers. */
export async function renderPortal(view, memberId) {
  fill(view, h('p', { class: 'muted' }, 'Loading…'));
  let portal;
  try {
    portal = await api('GET', `/admin/portals/${encodeURIComponent(memberId)}`);
  } catch (error) {
    fill(view, h('p', { class: 'error', role: 'alert' }, describeError(error)));
    return;
  }
  const base = `/admin/portals/${encodeURIComponent(portal.memberId)}`;
  const result = h('pre', { id: 'action-result', class: 'result', hidden: true });
  const show = (title, body, failed = false) => {
    result.hidden = false;
    result.className = failed ? 'result error' : 'result';
    result.textContent = `${title}\n${typeof body === 'string' ? body : JSON.stringify(body, null, 2)}`;
  };
  const run = async (button, title, method, path) => {
    button.disabled = true;
    try {
      const answer = await api(method, path);
      await renderPortal(view, memberId);
      const again = document.getElementById('action-result');
      if (again) {
        again.hidden = false;
        again.textContent = `${title}\n${JSON.stringify(answer, null, 2)}`;
      }
    } catch (error) {
      show(`${title} failed`, describeError(error), true);
      button.disabled = false;
    }
  };
  const buttons = ACTIONS.map((action) => {
    const button = h('button', {
      type: 'button',
      id: `action-${action.id}`,
      onclick: () => run(button, action.label, action.method, `${base}/${action.path}`),
    });
    button.textContent = action.label;
    return button;
  });
  const offboard = h('button', {
    type: 'button',
    id: 'action-offboard',
    class: 'danger',
    disabled: portal.status === 'deleted',
    onclick: async () => {
      const confirmed = await confirmDialog(
        `Offboard ${portal.domain} (${portal.memberId})? Its tokens are wiped and it gets no more ` +
          'traffic; its stored events are kept. This cannot be undone from here.',
        'Offboard',
      );
      if (confirmed) await run(offboard, 'Offboard', 'DELETE', base);
    },
  });
  offboard.textContent = 'Offboard…';

  const token = portal.token;
  fill(
    view,
    h('p', {}, h('a', { href: '#/portals' }, '← Portals')),
    h('h1', {}, portal.domain, ' ', badge(portal.status)),
    h('div', { class: 'actions' }, buttons, offboard),
    result,
    h(
      'div',
      { class: 'columns' },
      h(
        'section',
        {},
        h('h2', {}, 'Portal'),
        facts([
          ['Member id', h('code', { id: 'portal-member-id' }, portal.memberId)],
          ['Status', [badge(portal.status), portal.statusReason ? ` ${portal.statusReason}` : '']],
          ['Status changed', when(portal.statusChangedAt)],
          ['Client endpoint', portal.clientEndpoint],
          ['App version', portal.appVersion],
          [
            'License',
            `${portal.license.state}` +
              (portal.license.daysLeft === null ? '' : ` · ${portal.license.daysLeft} days left`) +
              (portal.license.family ? ` · ${portal.license.family}` : ''),
          ],
          ['Delivery mode', portal.deliveryMode],
          ['Installed', when(portal.installedAt)],
          ['Scope', portal.scope],
        ]),
      ),
      h(
        'section',
        { id: 'token-health' },
        h('h2', {}, 'Token health'),
        facts([
          ['Health', badge(token.health)],
          ['Refresh token stored', token.present ? 'yes' : 'no'],
          ['Access expires', `${when(token.accessExpiresAt)} (${ago(token.accessExpiresAt)})`],
          [
            'Refresh expires (est.)',
            `${when(token.refreshExpiresAt)} (${ago(token.refreshExpiresAt)})`,
          ],
          ['Last refreshed', when(token.refreshedAt)],
          ['Generation', String(token.generation)],
        ]),
      ),
      h(
        'section',
        { id: 'drain-state' },
        h('h2', {}, 'Queue and drains'),
        facts([
          ['Queue lag', duration(portal.queue.lagSeconds)],
          ['Drain requested', when(portal.queue.drainRequestedAt)],
          [
            'Lease held',
            portal.queue.leaseHeld ? `yes, until ${when(portal.queue.leaseExpiresAt)}` : 'no',
          ],
          ['Uncleared batches', String(portal.queue.unclearedBatches)],
          [
            'Last drain',
            portal.lastDrain
              ? [
                  badge(portal.lastDrain.outcome ?? 'running'),
                  ` ${portal.lastDrain.events} events · ${when(portal.lastDrain.finishedAt)}`,
                ]
              : 'never',
          ],
          [
            'Drained in total',
            portal.lastDrain ? String(portal.lastDrain.totalDrainedEvents) : '0',
          ],
          ['Failed passes in a row', String(portal.drainHealth.consecutiveFailures)],
          ['Last drain error', portal.drainHealth.lastError ?? portal.lastDrain?.error],
        ]),
      ),
      h(
        'section',
        { id: 'inbox-counts' },
        h('h2', {}, 'Inbox'),
        facts([
          ...['pending', 'failed', 'dead', 'unhandled', 'processed', 'discarded'].map((status) => [
            status,
            h(
              'a',
              { href: href('/events', { view: 'all', memberId: portal.memberId, status }) },
              String(portal.inbox[status]),
            ),
          ]),
          [
            'Oldest waiting',
            portal.inbox.oldestPendingAt ? ago(portal.inbox.oldestPendingAt) : '–',
          ],
        ]),
        h(
          'p',
          {},
          h(
            'a',
            {
              id: 'portal-events',
              href: href('/events', { view: 'all', memberId: portal.memberId }),
            },
            'All events of this portal →',
          ),
        ),
      ),
    ),
    h('h2', {}, 'Bound events'),
    portal.boundEvents.length === 0
      ? h('p', { class: 'muted' }, `None bound${portal.boundAt ? '' : ' yet'}.`)
      : h(
          'ul',
          { id: 'bound-events', class: 'tags' },
          portal.boundEvents.map((bound) =>
            h('li', {}, bound.event, bound.offline ? h('small', {}, ' offline') : ''),
          ),
        ),
    h('p', { class: 'muted' }, `Bound at ${when(portal.boundAt)}`),
    portal.placements.length === 0
      ? null
      : [
          h('h2', {}, 'Placements'),
          h(
            'ul',
            { class: 'tags' },
            portal.placements.map((placement) => h('li', {}, placement.code)),
          ),
        ],
    h('h2', {}, 'Status history'),
    h(
      'div',
      { id: 'status-history' },
      table(['When', 'From', 'To', 'Reason'], portal.statusHistory, (change) => [
        when(change.changedAt),
        change.from ?? '–',
        badge(change.to),
        change.reason,
      ]),
    ),
  );
}
