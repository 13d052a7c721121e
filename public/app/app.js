/* global document, window, fetch */
// The default UI: reads the session the backend placed in the page and asks who the user is.
(function () {
  'use strict';
  var meta = document.querySelector('meta[name="b24-session"]');
  var status = document.getElementById('status');
  function show(id, text) {
    document.getElementById(id).textContent = text;
  }
  if (!meta) {
    status.textContent = 'No session: open this page from Bitrix24.';
    return;
  }
  fetch('/app-api/me', { headers: { Authorization: 'Bearer ' + meta.content } })
    .then(function (response) {
      if (!response.ok) throw new Error('the backend answered ' + response.status);
      return response.json();
    })
    .then(function (me) {
      show('user-name', me.userName || 'user ' + me.userId);
      show('user-id', String(me.userId));
      show('is-admin', me.isAdmin ? 'yes' : 'no');
      show('member-id', me.memberId);
      show('placement', me.placement);
      document.getElementById('who').hidden = false;
      status.textContent = 'Signed in as ' + (me.userName || 'user ' + me.userId) + '.';
      status.setAttribute('data-ready', 'true');
      if (window.BX24 && typeof window.BX24.fitWindow === 'function') window.BX24.fitWindow();
    })
    .catch(function (error) {
      status.textContent = 'Could not check your session: ' + error.message;
    });
})();
