import { api, describeError, onUnauthorized, session } from './api.js';
import { renderEvent, renderEvents } from './events.js';
import { renderPortal, renderPortals } from './portals.js';
import { currentRoute } from './router.js';
import { renderStats } from './stats.js';

const loginView = document.getElementById('login');
const mainView = document.getElementById('view');
const header = document.getElementById('top');
const loginForm = document.getElementById('login-form');
const loginError = document.getElementById('login-error');
const tokenInput = document.getElementById('token');

let stopView = null;

function showLogin(message = '') {
  stopView?.();
  stopView = null;
  header.hidden = true;
  mainView.hidden = true;
  mainView.replaceChildren();
  loginView.hidden = false;
  loginError.textContent = message;
  tokenInput.value = '';
  tokenInput.focus();
}

/** Renders the view the hash names; nothing is fetched before a token is given. */
async function route() {
  if (!session.token()) return showLogin();
  stopView?.();
  stopView = null;
  loginView.hidden = true;
  header.hidden = false;
  mainView.hidden = false;
  const { segments, params } = currentRoute();
  const [section, id] = segments;
  for (const link of header.querySelectorAll('[data-nav]')) {
    link.classList.toggle('current', link.dataset.nav === (section ?? 'portals'));
  }
  mainView.dataset.view = id ? `${section}-detail` : (section ?? 'portals');
  if (section === 'events') {
    if (id) await renderEvent(mainView, id);
    else await renderEvents(mainView, params);
  } else if (section === 'stats') {
    stopView = renderStats(mainView);
  } else if (id) {
    await renderPortal(mainView, id);
  } else {
    await renderPortals(mainView, params);
  }
}

loginForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (!token) return;
  const button = document.getElementById('sign-in');
  button.disabled = true;
  loginError.textContent = '';
  try {
    // A cheap authenticated call proves the token before it is kept.
    await api('GET', '/admin/portals', { query: { limit: 1 }, token });
    session.signIn(token);
    tokenInput.value = '';
    await route();
  } catch (error) {
    tokenInput.value = '';
    loginError.textContent =
      error.status === 401
        ? 'Wrong token: the admin API refused it.'
        : `Could not sign in: ${describeError(error)}`;
  } finally {
    button.disabled = false;
  }
});

// A refused login must not sign out a session that is not there yet.
onUnauthorized(() => {
  if (!session.token()) return;
  session.signOut();
  showLogin('The admin API no longer accepts this token. Sign in again.');
});

document.getElementById('sign-out').addEventListener('click', () => {
  session.signOut();
  window.location.hash = '';
  showLogin();
});

window.addEventListener('hashchange', () => void route());
void route();
