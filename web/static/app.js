// rigwatch web UI: plain JavaScript, no build step. Everything it shows comes
// from the JSON API under /api/v1/ (Authorization: Bearer TOKEN; the SSE
// stream takes ?access_token= because EventSource cannot send headers).
// Pages are chosen by the URL fragment: #/alerts, #/alert/ID, #/feeders,
// #/feeder/ID, #/site/ID, #/operator/ID, #/search, #/calc, #/login.
(function () {
  'use strict';

  var TOKEN_KEY = 'rigwatch.token';
  // Kazakhstan keeps one time zone, UTC+5, without summer time. Times are
  // shown in it; "Etc/GMT-5" is the IANA name for UTC+5.
  var TZ_OFFSET_MS = 5 * 3600 * 1000;
  var TZ_NAME = 'Etc/GMT-5';
  var KINDS = ['feeder_imbalance', 'unregistered_load', 'over_capacity', 'purchase_shortfall', 'oversized_purchase', 'registry_violation'];
  var SEVERITIES = ['critical', 'warning', 'info'];
  var STATUSES = ['open', 'acknowledged', 'resolved'];
  var OBLASTS = ['Abai', 'Akmola', 'Aktobe', 'Almaty', 'Almaty city', 'Astana', 'Atyrau', 'East Kazakhstan', 'Jambyl', 'Jetisu', 'Karaganda',
    'Kostanay', 'Kyzylorda', 'Mangystau', 'North Kazakhstan', 'Pavlodar', 'Shymkent', 'Turkistan', 'Ulytau', 'West Kazakhstan'];
  var ROLE_RANK = { operator: 1, investigator: 2, admin: 3 };
  var BOARD_LIMIT = 200;

  var S = {
    token: null,
    who: null,       // {name, role} from /whoami
    seq: 0,          // bumps on every navigation: late answers for old pages are dropped
    es: null,        // the EventSource
    streamDown: false,
    board: { alerts: [], byId: {}, filters: {}, offset: 0, more: false, loaded: false },
    fresh: {},       // alert ids that arrived over the stream and are not yet seen
    plots: []        // live uPlot instances, resized with the window
  };
  // window.rigwatch is for people debugging in the console and for the
  // browser tests: it exposes the charts' data and the state, nothing more.
  var RW = window.rigwatch = { charts: {}, state: S };

  // ---------------------------------------------------------------- DOM

  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
        else if (k === 'dataset') { for (var d in v) el.dataset[d] = v[d]; }
        else if (k === 'value') el.value = v;
        else el.setAttribute(k, v === true ? '' : v);
      }
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(el, x); }); return; }
    el.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
  }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function main() { return $('#main'); }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  // ------------------------------------------------------------ formats

  var nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  var nf1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  var nf3 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });
  function num(v, small) {
    if (v === undefined || v === null || isNaN(v)) return '—';
    var a = Math.abs(v);
    return (a >= 100 ? nf0 : small === 3 ? nf3 : nf1).format(v);
  }
  function kzt(v) { return v === undefined || v === null ? '—' : nf0.format(v) + ' ₸'; }
  function local(iso) { return new Date(Date.parse(iso) + TZ_OFFSET_MS).toISOString(); }
  function fmtTime(iso) {
    if (!iso || iso.slice(0, 4) === '0001') return '—';
    return local(iso).slice(0, 16).replace('T', ' ');
  }
  function fmtWindow(a, b) {
    if (!a || !b) return '—';
    var x = local(a), y = local(b);
    var left = x.slice(5, 16).replace('T', ' ');
    var right = x.slice(0, 10) === y.slice(0, 10) ? y.slice(11, 16) : y.slice(5, 16).replace('T', ' ');
    return left + ' → ' + right;
  }
  // windowCell shows a window on two lines: start, then "→ end".
  function windowCell(a, b) {
    var w = fmtWindow(a, b).split(' → ');
    return w.length === 2 ? [w[0], h('br'), h('span', { class: 'muted', text: '→ ' }), w[1]] : w[0];
  }
  function secs(iso) { return Date.parse(iso) / 1000; }

  function sev(s) { return h('span', { class: 'sev sev-' + s, text: s }); }
  function status(s) { return h('span', { class: 'st st-' + s, text: s }); }
  function roleAtLeast(r) { return S.who && (ROLE_RANK[S.who.role] || 0) >= ROLE_RANK[r]; }

  // ---------------------------------------------------------------- API

  function ApiError(status, msg) { this.status = status; this.message = msg; }
  ApiError.prototype = Object.create(Error.prototype);

  function api(path, opts) {
    opts = opts || {};
    var init = { method: opts.method || 'GET', headers: { Authorization: 'Bearer ' + S.token } };
    if (opts.body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    return fetch(path, init).then(function (r) {
      if (r.status === 401) {
        signOut('The server did not accept the token: sign in again.');
        throw new ApiError(401, 'not signed in');
      }
      if (opts.raw) {
        if (!r.ok) return r.json().then(function (d) { throw new ApiError(r.status, d.error || r.statusText); });
        return r;
      }
      return r.json().catch(function () { return {}; }).then(function (d) {
        if (!r.ok) throw new ApiError(r.status, d.error || r.statusText);
        return d;
      });
    });
  }
  function qs(params) {
    var parts = [];
    for (var k in params) {
      if (params[k] !== undefined && params[k] !== null && params[k] !== '') parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
    }
    return parts.length ? '?' + parts.join('&') : '';
  }
  function enc(id) { return encodeURIComponent(id); }

  // A page's view: its fetches may answer after the user has moved on.
  function view() {
    var seq = ++S.seq;
    return { alive: function () { return seq === S.seq; } };
  }
  function fail(err) {
    var msg = err && err.status === 403
      ? 'Your role (' + (S.who ? S.who.role : '?') + ') may not open this page: ' + err.message
      : 'Could not load: ' + (err && err.message ? err.message : err);
    return h('p', { class: 'error', text: msg });
  }

  // ------------------------------------------------------ sign in / out

  function tokenFromURL() {
    var m = location.hash.match(/[#?&]token=([^&]+)/);
    if (!m) return false;
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    // The token leaves the address bar (and the history) at once.
    history.replaceState(null, '', location.pathname + location.search + '#/alerts');
    return true;
  }

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    S.token = null;
    S.who = null;
    stopStream();
    S.board = { alerts: [], byId: {}, filters: {}, offset: 0, more: false, loaded: false };
    S.fresh = {};
    S.loginMessage = msg || '';
    showWho();
    if (location.hash !== '#/login') location.hash = '#/login';
    else route();
  }

  function showWho() {
    var who = $('#who');
    who.textContent = S.who ? S.who.name + ' · ' + S.who.role : '';
    $('#logout').hidden = !S.who;
    document.querySelectorAll('#nav a').forEach(function (a) {
      var need = a.dataset.role;
      a.hidden = !S.who || (need && !roleAtLeast(need));
    });
  }

  function pageLogin() {
    var v = view();
    var input = h('input', { id: 'token-input', type: 'password', autocomplete: 'off', placeholder: 'rwt_…', spellcheck: 'false' });
    var err = h('p', { class: 'error', hidden: !S.loginMessage, text: S.loginMessage || '' });
    var form = h('form', {
      class: 'panel login', onsubmit: function (e) {
        e.preventDefault();
        var t = input.value.trim();
        if (!t) return;
        S.token = t;
        fetch('/api/v1/whoami', { headers: { Authorization: 'Bearer ' + t } }).then(function (r) {
          return r.json().then(function (d) { return { ok: r.ok, d: d }; });
        }).then(function (x) {
          if (!v.alive()) return;
          if (!x.ok) { err.hidden = false; err.textContent = x.d.error || 'token refused'; return; }
          sessionStorage.setItem(TOKEN_KEY, t);
          S.loginMessage = '';
          signedIn(x.d);
          location.hash = '#/alerts';
        }).catch(function (e) { err.hidden = false; err.textContent = String(e); });
      }
    },
    h('h1', { text: 'Sign in to rigwatch' }),
    h('p', { class: 'muted', text: 'Paste the API token your administrator gave you (rigwatch demo prints one). It is kept in this browser tab only.' }),
    input, err,
    h('div', { class: 'row-end' }, h('button', { id: 'login-go', class: 'primary', type: 'submit', text: 'Sign in' })));
    clear(main()).appendChild(form);
    input.focus();
  }

  function signedIn(who) {
    S.who = who;
    document.body.dataset.role = who.role;
    showWho();
    startStream();
  }

  // ------------------------------------------------------- live stream

  function setStream(state) {
    document.body.dataset.stream = state;
    $('#stream-state').textContent = state === 'live' ? '● live' : 'stream: ' + state;
  }

  function stopStream() {
    if (S.es) { S.es.close(); S.es = null; }
    clearTimeout(S.esRetry);
    setStream('off');
  }

  function startStream() {
    stopStream();
    var es = S.es = new EventSource('/api/v1/alerts/stream?access_token=' + enc(S.token));
    es.addEventListener('open', function () {
      setStream('live');
      // Whatever happened while the stream was down is fetched again.
      if (S.streamDown) { S.streamDown = false; if (S.board.loaded) loadBoard(false); }
    });
    es.addEventListener('error', function () {
      S.streamDown = true;
      if (es.readyState === EventSource.CLOSED) {
        setStream('off');
        // EventSource gives up on an HTTP error: check the token, retry.
        S.esRetry = setTimeout(function () {
          if (S.es !== es || !S.token) return;
          api('/api/v1/whoami').then(startStream, function () {});
        }, 5000);
      } else {
        setStream('reconnecting');
      }
    });
    es.addEventListener('alert', function (ev) {
      var a;
      try { a = JSON.parse(ev.data); } catch (e) { return; }
      applyAlert(a, true);
    });
  }

  // A poll while the stream is down keeps the one-minute promise.
  setInterval(function () {
    if (S.token && S.board.loaded && document.body.dataset.stream !== 'live') loadBoard(false);
  }, 30000);

  function matches(a, f) {
    return (!f.kind || a.kind === f.kind) && (!f.severity || a.severity === f.severity) &&
      (!f.oblast || a.oblast === f.oblast) && (!f.status || a.status === f.status);
  }

  // applyAlert takes a new or changed alert (from the stream or from an
  // acknowledge/resolve answer) into the board and whatever page shows it.
  function applyAlert(a, fromStream) {
    var b = S.board;
    var known = b.byId[a.alert_id];
    var i = b.alerts.indexOf(known);
    var keep = matches(a, b.filters);
    if (known && i >= 0) {
      if (keep) b.alerts[i] = a; else b.alerts.splice(i, 1);
    } else if (keep && b.loaded) {
      b.alerts.unshift(a);
      if (fromStream && a.status === 'open') S.fresh[a.alert_id] = Date.now();
    }
    if (keep) b.byId[a.alert_id] = a; else delete b.byId[a.alert_id];
    updateTitle();
    // Patch the rows in place: the board is never reloaded for one alert.
    document.querySelectorAll('tr[data-alert-id="' + CSS.escape(a.alert_id) + '"]').forEach(function (tr) {
      var tb = tr.parentNode;
      if (tb.id === 'alert-rows' && !keep) { tb.removeChild(tr); return; }
      var nr = alertRow(a, tb.dataset.compact === '1');
      nr.classList.add('updated');
      tb.replaceChild(nr, tr);
    });
    var tb = $('#alert-rows');
    if (tb && keep && !tb.querySelector('tr[data-alert-id="' + CSS.escape(a.alert_id) + '"]')) {
      var empty = $('#board-empty');
      if (empty) empty.hidden = true;
      tb.insertBefore(alertRow(a, false), tb.firstChild);
    }
    boardCounts();
    var d = $('#alert-detail');
    if (d && d.dataset.alertId === a.alert_id) route();
  }

  function updateTitle() {
    var n = Object.keys(S.fresh).length;
    document.title = n ? '(' + n + ') rigwatch' : 'rigwatch';
  }

  function seen(id) {
    if (!S.fresh[id]) return;
    delete S.fresh[id];
    updateTitle();
    var tr = document.querySelector('#alert-rows tr[data-alert-id="' + CSS.escape(id) + '"]');
    if (tr) tr.classList.remove('new');
  }

  // ----------------------------------------------------- note dialog

  // askNote asks for a note and performs action ('acknowledge' or
  // 'resolve') on alert a.
  function askNote(a, action) {
    var dlg = $('#note-dialog');
    var title = action === 'acknowledge' ? 'Acknowledge alert' : 'Resolve alert';
    $('#note-title').textContent = title;
    $('#note-alert').textContent = a.summary || a.alert_id;
    $('#note-ok').textContent = action === 'acknowledge' ? 'Acknowledge' : 'Resolve';
    $('#note-text').value = '';
    var err = $('#note-error');
    err.hidden = true;
    var form = $('#note-form');
    form.onsubmit = function (e) {
      e.preventDefault();
      $('#note-ok').disabled = true;
      api('/api/v1/alerts/' + enc(a.alert_id) + '/' + action, { method: 'POST', body: { note: $('#note-text').value } }).then(function (updated) {
        $('#note-ok').disabled = false;
        dlg.close();
        seen(a.alert_id);
        applyAlert(updated, false);
      }, function (e2) {
        $('#note-ok').disabled = false;
        err.hidden = false;
        err.textContent = e2.message;
      });
    };
    $('#note-cancel').onclick = function () { dlg.close(); };
    dlg.showModal();
    $('#note-text').focus();
  }

  function actions(a) {
    var box = h('span', { class: 'actions nowrap' });
    if (a.status === 'open') {
      box.appendChild(h('button', { class: 'small ack', type: 'button', text: 'Ack', title: 'Acknowledge', onclick: function (e) { e.stopPropagation(); askNote(a, 'acknowledge'); } }));
      box.appendChild(document.createTextNode(' '));
    }
    if (a.status !== 'resolved') {
      box.appendChild(h('button', { class: 'small resolve', type: 'button', text: 'Resolve', onclick: function (e) { e.stopPropagation(); askNote(a, 'resolve'); } }));
    }
    return box;
  }

  // --------------------------------------------------------- links

  // entityHref links to the page of an entity an alert names; the page
  // then shows the alert's window (the API's ?alert=), not the default one.
  function entityHref(type, id, a) {
    if (!roleAtLeast('investigator') || !id) return null;
    var w = a && a.alert_id ? qs({ alert: a.alert_id }) : '';
    switch (type) {
      case 'feeder': return '#/feeder/' + enc(id) + w;
      case 'site': return '#/site/' + enc(id) + w;
      case 'operator': return '#/operator/' + enc(id) + w;
      case 'meter': return a && a.site_id ? '#/site/' + enc(a.site_id) + w : a && a.feeder_id ? '#/feeder/' + enc(a.feeder_id) + w : null;
      case 'rig': return a && a.site_id ? '#/site/' + enc(a.site_id) + w : '#/search?q=' + enc(id);
      case 'license': case 'licence': case 'purchase':
        return a && a.operator_id ? '#/operator/' + enc(a.operator_id) + w : '#/search?q=' + enc(id);
    }
    return null;
  }
  function link(href, text) {
    return href ? h('a', { href: href, text: text, onclick: function (e) { e.stopPropagation(); } }) : document.createTextNode(text);
  }

  // ---------------------------------------------------------- alerts

  function alertRow(a, compact) {
    var tr = h('tr', {
      class: 'clickable' + (S.fresh[a.alert_id] ? ' new' : ''),
      dataset: { alertId: a.alert_id, status: a.status, severity: a.severity },
      onclick: function () { seen(a.alert_id); location.hash = '#/alert/' + enc(a.alert_id); }
    },
    h('td', { class: 'nowrap' }, sev(a.severity)),
    h('td', { class: 'kind', text: a.kind }),
    h('td', { class: 'summary', text: a.summary }),
    h('td', { class: 'nowrap' }, h('div', { class: 'muted small', text: a.entity_type }), link(entityHref(a.entity_type, a.entity_id, a), a.entity_id)),
    compact ? null : h('td', { text: a.oblast || '—' }),
    h('td', { class: 'nowrap' }, windowCell(a.window_start, a.window_end)),
    h('td', { class: 'num', text: num(a.excess_kwh) }),
    h('td', { class: 'num', text: kzt(a.estimated_value_kzt) }),
    h('td', { class: 'status' }, status(a.status)),
    h('td', { class: 'nowrap' }, actions(a)));
    return tr;
  }

  function alertTable(alerts, id, compact) {
    var tb = h('tbody', { id: id || null, dataset: { compact: compact ? '1' : '0' } });
    alerts.forEach(function (a) { tb.appendChild(alertRow(a, compact)); });
    return h('table', { class: 'alerts' },
      h('thead', {}, h('tr', {},
        h('th', { text: 'Severity' }), h('th', { text: 'Kind' }), h('th', { text: 'Summary' }), h('th', { text: 'Entity' }),
        compact ? null : h('th', { text: 'Oblast' }), h('th', { text: 'Window (UTC+5)' }), h('th', { class: 'num', text: 'Excess kWh' }),
        h('th', { class: 'num', text: 'Value KZT' }), h('th', { text: 'Status' }), h('th', { text: '' }))),
      tb);
  }

  function readFilters(p) {
    return { kind: p.kind || '', severity: p.severity || '', oblast: p.oblast || '', status: p.status || '', order: p.order || '' };
  }

  function loadBoard(append) {
    var b = S.board;
    var f = b.filters;
    var offset = append ? b.offset : 0;
    return api('/api/v1/alerts' + qs({ kind: f.kind, severity: f.severity, oblast: f.oblast, status: f.status, order: f.order, limit: BOARD_LIMIT, offset: offset })).then(function (d) {
      if (!append) { b.alerts = []; b.byId = {}; }
      d.alerts.forEach(function (a) {
        if (b.byId[a.alert_id]) return;
        b.byId[a.alert_id] = a;
        b.alerts.push(a);
      });
      b.offset = offset + d.alerts.length;
      b.more = d.alerts.length === BOARD_LIMIT;
      b.loaded = true;
      drawBoardRows();
    });
  }

  function drawBoardRows() {
    var tb = $('#alert-rows');
    if (!tb) return;
    clear(tb);
    S.board.alerts.forEach(function (a) { tb.appendChild(alertRow(a, false)); });
    $('#board-empty').hidden = S.board.alerts.length > 0;
    $('#board-more').hidden = !S.board.more;
    $('#board').dataset.loaded = '1';
    boardCounts();
  }

  function boardCounts() {
    var el = $('#board-counts');
    if (!el) return;
    var c = { critical: 0, warning: 0, info: 0 }, open = 0;
    S.board.alerts.forEach(function (a) {
      if (a.status === 'open') { open++; c[a.severity] = (c[a.severity] || 0) + 1; }
    });
    var fresh = Object.keys(S.fresh).length;
    clear(el);
    add(el, [
      h('span', {}, h('b', { text: String(S.board.alerts.length) }), ' shown'),
      h('span', {}, h('b', { text: String(open) }), ' open'),
      h('span', {}, sev('critical'), ' ', h('b', { text: String(c.critical) })),
      h('span', {}, sev('warning'), ' ', h('b', { text: String(c.warning) })),
      fresh ? h('span', {}, h('b', { text: String(fresh) }), ' new ', h('button', { class: 'small', type: 'button', text: 'mark seen', onclick: function () { Object.keys(S.fresh).forEach(seen); boardCounts(); } })) : null
    ]);
  }

  function select(id, label, values, current, allLabel) {
    var s = h('select', { id: id });
    s.appendChild(h('option', { value: '', text: allLabel }));
    values.forEach(function (v) {
      var o = h('option', { value: v, text: v });
      if (v === current) o.selected = true;
      s.appendChild(o);
    });
    return h('label', {}, label, s);
  }

  function pageBoard(p) {
    var v = view();
    var f = readFilters(p);
    var changed = JSON.stringify(f) !== JSON.stringify(S.board.filters) || !S.board.loaded;
    S.board.filters = f;
    var oblast = h('input', { id: 'f-oblast', list: 'oblasts', value: f.oblast, placeholder: 'any', size: 14 });
    var dl = h('datalist', { id: 'oblasts' });
    OBLASTS.forEach(function (o) { dl.appendChild(h('option', { value: o })); });
    function apply() {
      var nf = {
        kind: $('#f-kind').value, severity: $('#f-severity').value, oblast: oblast.value.trim(),
        status: $('#f-status').value, order: $('#f-order').value
      };
      location.hash = '#/alerts' + qs(nf);
    }
    var orderSel = h('select', { id: 'f-order' });
    [['', 'latest change'], ['-estimated_value_kzt', 'value KZT'], ['-excess_kwh', 'excess kWh'], ['-score', 'score'], ['-window_end', 'window end']].forEach(function (o) {
      var opt = h('option', { value: o[0], text: o[1] });
      if (o[0] === f.order) opt.selected = true;
      orderSel.appendChild(opt);
    });
    var bar = h('div', { class: 'filters', onchange: apply },
      select('f-kind', 'Kind', KINDS, f.kind, 'all kinds'),
      select('f-severity', 'Severity', SEVERITIES, f.severity, 'all severities'),
      h('label', {}, 'Oblast', oblast, dl),
      select('f-status', 'Status', STATUSES, f.status, 'all statuses'),
      h('label', {}, 'Order by', orderSel),
      h('span', { id: 'board-counts', class: 'counts' }));
    var root = h('section', { id: 'board' },
      h('h1', {}, 'Alerts ', h('span', { class: 'muted', text: '— new alerts arrive live at the top' })),
      bar,
      alertTable([], 'alert-rows', false),
      h('p', { id: 'board-empty', class: 'muted', hidden: true, text: 'No alerts match these filters.' }),
      h('div', { class: 'pager' }, h('button', { id: 'board-more', type: 'button', hidden: true, text: 'Load more', onclick: function () { loadBoard(true); } })));
    clear(main()).appendChild(root);
    if (!changed) { drawBoardRows(); return; }
    loadBoard(false).catch(function (e) { if (v.alive()) root.appendChild(fail(e)); });
  }

  // ----------------------------------------------------- alert detail

  function kvList(pairs) {
    var dl = h('dl', { class: 'kv' });
    pairs.forEach(function (p) {
      if (p[1] === undefined || p[1] === null || p[1] === '') return;
      dl.appendChild(h('dt', { text: p[0] }));
      dl.appendChild(h('dd', {}, p[1]));
    });
    return dl;
  }

  function evidenceValue(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number') return num(v, 3);
    if (typeof v === 'string') return /^\d{4}-\d\d-\d\dT/.test(v) ? fmtTime(v) + ' (UTC+5)' : v;
    if (typeof v === 'boolean') return v ? 'yes' : 'no';
    if (Array.isArray(v) && v.length && v.length <= 60 && v.every(function (x) { return x && typeof x === 'object' && !Array.isArray(x); })) {
      var cols = [];
      v.forEach(function (x) { Object.keys(x).forEach(function (k) { if (cols.indexOf(k) < 0) cols.push(k); }); });
      return h('table', { class: 'sub' },
        h('thead', {}, h('tr', {}, cols.map(function (c) { return h('th', { text: c }); }))),
        h('tbody', {}, v.map(function (x) {
          return h('tr', {}, cols.map(function (c) { var y = x[c]; return h('td', { class: typeof y === 'number' ? 'num' : '', text: typeof y === 'object' && y !== null ? JSON.stringify(y) : (typeof y === 'number' ? num(y, 3) : evidenceValue(y)) }); }));
        })));
    }
    return h('pre', { text: JSON.stringify(v, null, 2) });
  }

  function download(a) {
    var btn = $('#evidence-download');
    btn.disabled = true;
    api('/api/v1/alerts/' + enc(a.alert_id) + '/evidence?format=zip', { raw: true }).then(function (r) {
      var cd = r.headers.get('Content-Disposition') || '';
      var m = cd.match(/filename="([^"]+)"/);
      return r.blob().then(function (b) {
        var url = URL.createObjectURL(b);
        var l = h('a', { href: url, download: m ? m[1] : 'evidence-' + a.alert_id + '.zip' });
        document.body.appendChild(l);
        l.click();
        l.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
        btn.disabled = false;
      });
    }).catch(function (e) { btn.disabled = false; btn.after(h('span', { class: 'error', text: ' ' + e.message })); });
  }

  function pageAlert(id) {
    var v = view();
    clear(main()).appendChild(h('p', { class: 'muted', text: 'Loading alert ' + id + '…' }));
    api('/api/v1/alerts/' + enc(id)).then(function (a) {
      if (!v.alive()) return;
      seen(a.alert_id);
      var ids = [['feeder', a.feeder_id], ['meter', a.meter_id], ['site', a.site_id], ['operator', a.operator_id], ['rig', a.rig_id], ['license', a.license_id], ['purchase', a.tx_id]];
      var ev = a.evidence || {};
      var evRows = Object.keys(ev).sort().map(function (k) { return h('tr', {}, h('th', { text: k }), h('td', {}, evidenceValue(ev[k]))); });
      var events = a.events || [];
      var root = h('section', { id: 'alert-detail', dataset: { alertId: a.alert_id, status: a.status } },
        h('p', {}, h('a', { href: '#/alerts', text: '← Alerts' })),
        h('h1', {}, sev(a.severity), ' ', h('span', { class: 'kind', text: a.kind }), ' ', status(a.status)),
        h('div', { class: 'panel' },
          h('p', { class: 'big-summary', style: 'font-size:17px;margin-top:0', text: a.summary }),
          h('div', { class: 'row-end', style: 'justify-content:flex-start' }, actions(a),
            roleAtLeast('investigator') ? h('button', { id: 'evidence-download', type: 'button', text: 'Download evidence bundle (.zip)', onclick: function () { download(a); } }) : null)),
        h('div', { class: 'grid2' },
          h('div', { class: 'panel' }, h('h2', { style: 'margin-top:0', text: 'Finding' }), kvList([
            ['Alert id', a.alert_id],
            ['Entity', h('span', {}, a.entity_type + ' ', link(entityHref(a.entity_type, a.entity_id, a), a.entity_id))],
            ['Oblast', a.oblast],
            ['Window (UTC+5)', fmtTime(a.window_start) + ' → ' + fmtTime(a.window_end)],
            ['Detected at', fmtTime(a.detected_at)],
            ['Observed kWh', a.observed_kwh !== undefined ? num(a.observed_kwh, 3) : null],
            ['Expected kWh', a.expected_kwh !== undefined ? num(a.expected_kwh, 3) : null],
            ['Excess kWh', a.excess_kwh !== undefined ? num(a.excess_kwh, 3) : null],
            ['Estimated value', a.estimated_value_kzt !== undefined ? kzt(a.estimated_value_kzt) : null],
            ['Score', num(a.score, 3)],
            ['Created', fmtTime(a.created_at)],
            ['Updated', fmtTime(a.updated_at)],
            ['Note', a.note]
          ].concat(ids.filter(function (x) { return x[1]; }).map(function (x) { return [x[0].charAt(0).toUpperCase() + x[0].slice(1) + ' id', link(entityHref(x[0], x[1], a), x[1])]; })))),
          h('div', { class: 'panel' }, h('h2', { style: 'margin-top:0', text: 'Status history' }),
            events.length ? h('table', { id: 'alert-events' },
              h('thead', {}, h('tr', {}, h('th', { text: 'When (UTC+5)' }), h('th', { text: 'Who' }), h('th', { text: 'Change' }), h('th', { text: 'Note' }))),
              h('tbody', {}, events.map(function (e) {
                return h('tr', {}, h('td', { class: 'nowrap', text: fmtTime(e.ts) }), h('td', { text: e.who }),
                  h('td', { class: 'nowrap' }, status(e.from_status || 'open'), ' → ', status(e.to_status)), h('td', { text: e.note || '' }));
              }))) : h('p', { class: 'muted', text: 'No status changes yet.' }))),
        h('h2', { text: 'Evidence' }),
        evRows.length ? h('table', { id: 'evidence', class: 'kvtable' }, h('tbody', {}, evRows)) : h('p', { class: 'muted', text: 'No evidence figures.' }));
      clear(main()).appendChild(root);
    }).catch(function (e) { if (v.alive()) clear(main()).appendChild(fail(e)); });
  }

  // ---------------------------------------------------------- charts

  // chart draws a time series with uPlot into a new box and records what it
  // drew in the box's data-points attribute and in rigwatch.charts[name].
  // o: {title, x: [unix seconds], series: [{label, values, stroke, fill,
  // dash, bars, step, width}], bands: [[upper, lower, fill]], yLabel, height}
  function chart(name, o) {
    var box = h('div', { class: 'chart', id: 'chart-' + name, dataset: { chart: name, points: '0' } }, h('div', { class: 'title', text: o.title }));
    var points = o.x.length;
    RW.charts[name] = { points: points, series: o.series.map(function (s) { return { label: s.label, points: s.values.filter(function (y) { return y !== null && y !== undefined; }).length }; }) };
    if (!points) {
      box.appendChild(h('div', { class: 'empty', text: o.empty || 'No data in this window.' }));
      return box;
    }
    if (typeof uPlot === 'undefined') {
      box.appendChild(h('p', { class: 'error', text: 'The chart library did not load.' }));
      return box;
    }
    var cats = o.categories;
    var x0 = cats
      ? { value: function (u, i) { return i === null || i === undefined ? '—' : cats[i] || ''; } }
      : { value: function (u, ts) { return ts === null || ts === undefined ? '—' : fmtTime(new Date(ts * 1000).toISOString()); } };
    var series = [x0].concat(o.series.map(function (s) {
      var d = { label: s.label, stroke: s.stroke, width: s.width || 1.5, fill: s.fill, dash: s.dash, points: { show: !!s.pointsShow } };
      if (s.bars) d.paths = uPlot.paths.bars({ size: [s.barSize || 0.6, 60], align: s.align || 0 });
      if (s.step) d.paths = uPlot.paths.stepped({ align: 1 });
      d.value = function (u, y) { return y === null || y === undefined ? '—' : num(y, 3) + (s.unit ? ' ' + s.unit : ''); };
      return d;
    }));
    var opts = {
      width: 600, height: o.height || 260,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), TZ_NAME); },
      series: series,
      axes: [cats ? {
        splits: function () { return cats.map(function (c, i) { return i; }); },
        values: function (u, splits) { return splits.map(function (i) { return cats[i] || ''; }); }
      } : {
        // 24-hour local time; the date at midnight.
        values: function (u, splits) { return splits.map(tick); }
      }, { label: o.yLabel, size: 64, values: function (u, vals) { return vals.map(function (y) { return num(y); }); } }],
      scales: {
        x: cats ? { time: false, range: function () { return [-0.5, cats.length - 0.5]; } } : { time: true },
        y: { range: function (u, lo, hi) { return [Math.min(0, lo), hi > 0 ? hi * 1.08 : 1]; } }
      },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } }
    };
    if (o.bands) opts.bands = o.bands.map(function (b) { return { series: [b[0], b[1]], fill: b[2] }; });
    var data = [o.x].concat(o.series.map(function (s) { return s.values; }));
    // The box is in the document once the caller appends it: size it then.
    requestAnimationFrame(function () {
      if (!box.isConnected) return;
      opts.width = Math.max(300, box.clientWidth - 18);
      var u = new uPlot(opts, data, box);
      S.plots.push({ u: u, box: box });
      box.dataset.points = String(points);
      box.dataset.rendered = '1';
    });
    return box;
  }

  function tick(ts) {
    var l = new Date(ts * 1000 + TZ_OFFSET_MS).toISOString();
    var hm = l.slice(11, 16);
    return hm === '00:00' ? l.slice(5, 10) : hm;
  }

  window.addEventListener('resize', function () {
    S.plots = S.plots.filter(function (p) { return p.box.isConnected; });
    S.plots.forEach(function (p) { p.u.setSize({ width: Math.max(300, p.box.clientWidth - 18), height: p.u.height }); });
  });

  function card(k, v, bad, id) {
    return h('div', { class: 'card' + (bad ? ' bad' : ''), id: id || null }, h('div', { class: 'k', text: k }), h('div', { class: 'v', text: v }));
  }

  // pageWindow is what an entity page asks the API for: the window of the
  // alert it was opened from, or since (default def) and until. Without
  // until the API ends the window at the newest stored reading, so a page
  // shows the data wherever it lies against the wall clock.
  function pageWindow(p, def) {
    if (p.alert) return { alert: p.alert };
    return { since: p.since || def, until: p.until };
  }

  // sinceBar chooses a page's window: "last N" back from the newest data,
  // or (opened from an alert) that alert's window.
  function sinceBar(base, p, def, choices) {
    var current = p.alert ? '' : p.since || def;
    var sel = h('select', { id: 'since', onchange: function () { location.hash = base + qs({ since: sel.value }); } });
    if (p.alert) sel.appendChild(h('option', { value: '', text: 'alert window', selected: true }));
    else if (choices.indexOf(current) < 0) choices = [current].concat(choices);
    choices.forEach(function (c) {
      var o = h('option', { value: c, text: 'last ' + c });
      if (c === current) o.selected = true;
      sel.appendChild(o);
    });
    return h('label', { class: 'muted' }, 'Window ', sel);
  }

  function windowText(d) { return fmtTime(d.from) + ' → ' + fmtTime(d.to) + ' (UTC+5)'; }

  // windowNote says which window a page shows: an alert's, with a link back.
  function windowNote(d, p) {
    return h('span', { class: 'muted', id: 'page-window' }, windowText(d),
      p.alert ? [' · the window of alert ', link('#/alert/' + enc(p.alert), p.alert), ' with a day before it'] : null);
  }

  // windowData marks a page's section with the window it shows.
  function windowData(extra, d) {
    extra.from = d.from;
    extra.to = d.to;
    return extra;
  }

  // ---------------------------------------------------------- feeders

  function pageFeeders(p) {
    var v = view();
    var since = p.since || '30d', top = p.top || '50', oblast = p.oblast || '';
    function go() { location.hash = '#/feeders' + qs({ since: $('#fr-since').value, top: $('#fr-top').value, oblast: $('#fr-oblast').value.trim() }); }
    var sinceSel = h('select', { id: 'fr-since' }), topSel = h('select', { id: 'fr-top' });
    ['7d', '30d'].forEach(function (c) { var o = h('option', { value: c, text: 'last ' + c }); if (c === since) o.selected = true; sinceSel.appendChild(o); });
    ['20', '50', '100', '500'].forEach(function (c) { var o = h('option', { value: c, text: 'top ' + c }); if (c === top) o.selected = true; topSel.appendChild(o); });
    var dl = h('datalist', { id: 'oblasts' });
    OBLASTS.forEach(function (o) { dl.appendChild(h('option', { value: o })); });
    var out = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
    var section = h('section', { id: 'feeders' },
      h('h1', {}, 'Feeders ', h('span', { class: 'muted', text: '— ranked by energy beyond normal technical losses (head meter minus its meters, less the losses the detector\'s model of each feeder allows)' })),
      h('div', { class: 'filters', onchange: go },
        h('label', {}, 'Window', sinceSel), h('label', {}, 'Show', topSel),
        h('label', {}, 'Oblast', h('input', { id: 'fr-oblast', list: 'oblasts', value: oblast, placeholder: 'any', size: 14 }), dl)),
      out);
    clear(main()).appendChild(section);
    api('/api/v1/feeders' + qs({ since: since, top: top, oblast: oblast })).then(function (d) {
      if (!v.alive()) return;
      windowData(section.dataset, d);
      var rows = d.top.map(function (f) {
        return h('tr', { class: 'clickable', dataset: { feederId: f.feeder_id }, onclick: function () { location.hash = '#/feeder/' + enc(f.feeder_id) + qs({ since: since === '30d' ? '30d' : '7d' }); } },
          h('td', { class: 'num', text: String(f.rank) }),
          h('td', {}, link('#/feeder/' + enc(f.feeder_id), f.feeder_id)),
          h('td', { text: f.oblast || '—' }), h('td', { text: f.class || '—' }),
          h('td', { class: 'num', text: f.meters_reporting + ' / ' + f.meter_count }),
          h('td', { class: 'num', text: num(f.head_kwh) }), h('td', { class: 'num', text: num(f.meters_kwh) }),
          h('td', { class: 'num', text: num(f.unaccounted_kwh) }),
          h('td', { class: 'num', text: num(f.unaccounted_pct) + ' %' }),
          h('td', { class: 'num', title: lossModelText(f.loss_model), text: num(f.normal_loss_kwh) + (f.loss_model ? ' (' + num(100 * f.loss_model.share) + ' %)' : '') }),
          h('td', { class: 'num', style: f.beyond_loss_kwh > 0 ? 'color:var(--crit);font-weight:600' : '', text: num(f.beyond_loss_kwh) }),
          h('td', { class: 'num', text: kzt(f.estimated_value_kzt) }));
      });
      clear(out);
      add(out, [
        h('p', { class: 'muted', text: windowText(d) + ' · ' + d.feeders + ' feeders with a reporting head meter, ' + d.feeders_without_head + ' without · normal losses by each feeder\'s loss model (its own history, or its peers\' or class\'s where its own is implausible) · only energy beyond them is valued, at ' + d.tariff_kzt_per_kwh + ' KZT/kWh' }),
        h('table', { id: 'feeder-ranking' },
          h('thead', {}, h('tr', {}, h('th', { class: 'num', text: '#' }), h('th', { text: 'Feeder' }), h('th', { text: 'Oblast' }), h('th', { text: 'Class' }),
            h('th', { class: 'num', text: 'Meters reporting' }), h('th', { class: 'num', text: 'Head kWh' }), h('th', { class: 'num', text: 'Meters kWh' }),
            h('th', { class: 'num', text: 'Unaccounted kWh (head − meters)' }), h('th', { class: 'num', text: 'Unaccounted' }), h('th', { class: 'num', text: 'Normal losses kWh' }),
            h('th', { class: 'num', text: 'Beyond normal losses kWh' }), h('th', { class: 'num', text: 'Value beyond losses' }))),
          h('tbody', {}, rows)),
        rows.length ? null : h('p', { class: 'muted', text: 'No feeder has head-meter readings in this window.' })
      ]);
    }).catch(function (e) { if (v.alive()) clear(out).appendChild(fail(e)); });
  }

  function pageFeeder(id, p) {
    var v = view();
    clear(main()).appendChild(h('p', { class: 'muted', text: 'Loading feeder ' + id + '…' }));
    api('/api/v1/feeders/' + enc(id) + qs(pageWindow(p, '7d'))).then(function (d) {
      if (!v.alive()) return;
      var x = d.hourly.map(function (r) { return secs(r.hour); });
      var head = d.hourly.map(function (r) { return r.head_kwh; });
      var meters = d.hourly.map(function (r) { return r.meters_kwh; });
      var floor = d.hourly.map(function (r) { return r.head_kwh - r.loss_band_kwh; });
      var beyond = d.beyond_loss_kwh > 0;
      var suspects = d.suspects || [];
      // The detail's "meters" is the list: it shadows the ranking's count.
      var downstream = d.meters.filter(function (m) { return m.role !== 'feeder_head'; }).length;
      var siteRows = d.meters.map(function (m) {
        return h('tr', { dataset: { meterId: m.meter_id } },
          h('td', { text: m.meter_id }), h('td', {}, h('span', { class: 'tag', text: m.role })), h('td', { text: m.class }),
          h('td', {}, m.site_id ? link('#/site/' + enc(m.site_id), m.site_id) : '—'),
          h('td', { class: 'num', text: m.rigs !== undefined ? nf0.format(m.rigs) : '—' }),
          h('td', { class: 'num', text: m.registered_kw !== undefined ? num(m.registered_kw) : '—' }),
          h('td', { class: 'num', text: num(m.kwh) }),
          h('td', { class: 'num', text: nf0.format(m.readings) }));
      });
      clear(main()).appendChild(h('section', { id: 'feeder', dataset: windowData({ feederId: id }, d) },
        h('p', {}, h('a', { href: '#/feeders', text: '← Feeders' })),
        h('h1', {}, 'Feeder ' + id + ' ', h('span', { class: 'muted', text: [d.oblast, d.class].filter(Boolean).join(' · ') })),
        h('div', { class: 'filters' }, sinceBar('#/feeder/' + enc(id), p, '7d', ['2d', '7d', '30d']), windowNote(d, p)),
        h('div', { class: 'cards' },
          card('Head meter kWh', num(d.head_kwh)), card('Sum of meters kWh', num(d.meters_kwh)),
          card('Unaccounted kWh (head − meters)', num(d.unaccounted_kwh)), card('Unaccounted share', num(d.unaccounted_pct) + ' %'),
          card('Normal technical losses kWh', num(d.normal_loss_kwh) + (d.loss_model ? ' (' + num(100 * d.loss_model.share) + ' %)' : ''), false, 'card-normal-loss'),
          card('Beyond normal losses kWh', num(d.beyond_loss_kwh), beyond, 'card-beyond-loss'), card('Value beyond losses', kzt(d.estimated_value_kzt), beyond),
          card('Meters reporting', d.meters_reporting + ' / ' + downstream)),
        h('p', { class: 'muted', id: 'loss-model', text: lossModelText(d.loss_model) }),
        chart('balance', {
          title: 'Hourly energy: feeder head vs the sum of its meters (shaded: normal technical loss band)', yLabel: 'kWh per hour', x: x,
          empty: 'No readings on this feeder in the window.',
          series: [
            { label: 'Head meter', values: head, stroke: '#16202c', width: 2, unit: 'kWh' },
            { label: 'Sum of meters', values: meters, stroke: '#1f5fa8', width: 2, unit: 'kWh' },
            { label: 'Head − normal loss', values: floor, stroke: 'rgba(46,125,50,.6)', dash: [4, 4], width: 1, unit: 'kWh' }
          ],
          bands: [[1, 3, 'rgba(46,125,50,.12)']]
        }),
        chart('residual', {
          title: 'Hourly residual (head − meters) against the normal loss band: above the dashed line is energy taken before a meter', yLabel: 'kWh per hour', x: x, height: 200,
          series: [
            { label: 'Residual', values: d.hourly.map(function (r) { return r.residual_kwh; }), stroke: '#b3261e', fill: 'rgba(179,38,30,.10)', width: 2, unit: 'kWh' },
            { label: 'Normal loss band', values: d.hourly.map(function (r) { return r.loss_band_kwh; }), stroke: '#2e7d32', dash: [6, 4], width: 1.5, unit: 'kWh' }
          ]
        }),
        h('h2', { text: 'Alerts on this feeder' }),
        d.alerts.length ? alertTable(d.alerts, null, true) : h('p', { class: 'muted', text: 'No alerts.' }),
        suspects.length ? h('section', { id: 'suspects' },
          h('h2', { text: 'Suspect meters (' + suspects.length + '): the doors to knock on first' }),
          h('p', { class: 'muted', text: 'Named by the imbalance alert: meters that read less than their usual use on the days the feeder did not balance. Each chart: what the meter read each hour against what it usually reads at that hour of a weekday or weekend day.' }),
          suspects.map(function (sp, i) {
            return h('div', { class: 'suspect', dataset: { meterId: sp.meter_id } },
              h('h3', {}, (i + 1) + '. ' + sp.meter_id + ' ', h('span', { class: 'muted', text: 'score ' + num(sp.score) + ' · about ' + num(sp.est_kwh) + ' kWh hidden' })),
              chart('suspect-' + i, {
                title: 'Meter ' + sp.meter_id + ': readings against its usual use', yLabel: 'kWh per hour', height: 160,
                x: sp.hours.map(secs), empty: 'No readings from this meter in the window.',
                series: [
                  { label: 'Read', values: sp.kwh, stroke: '#b3261e', width: 1.5, unit: 'kWh' },
                  { label: 'Usual', values: sp.usual_kwh, stroke: '#5f6b7a', dash: [5, 4], width: 1.5, unit: 'kWh' }
                ]
              }));
          })) : null,
        h('h2', { text: 'Meters on this feeder (' + d.meters.length + ')' }),
        h('table', { id: 'feeder-meters' },
          h('thead', {}, h('tr', {}, h('th', { text: 'Meter' }), h('th', { text: 'Role' }), h('th', { text: 'Class' }), h('th', { text: 'Site' }),
            h('th', { class: 'num', text: 'Registered rigs' }), h('th', { class: 'num', text: 'Registered kW' }), h('th', { class: 'num', text: 'kWh in window' }), h('th', { class: 'num', text: 'Readings' }))),
          h('tbody', {}, siteRows))));
    }).catch(function (e) { if (v.alive()) clear(main()).appendChild(fail(e)); });
  }

  // lossModelText says where a feeder's normal losses come from.
  function lossModelText(m) {
    if (!m) return '';
    var src = {
      own_fit: 'fitted on the feeder\'s own history by the detector',
      peers: 'its peers\' median: its own history gave ' + num(100 * m.fitted_share) + ' %, more than a feeder of its class loses',
      band: 'typical of its class: its own history gave ' + num(100 * m.fitted_share) + ' %, more than a feeder of its class loses',
      page_fit: 'fitted on this window (the detector has not judged this feeder yet)'
    }[m.source] || m.source;
    return 'Normal technical losses: ' + num(100 * m.share) + ' % of the metered energy, ' + src + '.';
  }

  // ---------------------------------------------------- site, operator

  function licenceTable(ls) {
    if (!ls.length) return h('p', { class: 'muted', text: 'No licence on record.' });
    return h('table', { class: 'licences' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Licence' }), h('th', { text: 'Operator' }), h('th', { text: 'Status' }), h('th', { text: 'Valid' }),
        h('th', { class: 'num', text: 'Licensed kW' }), h('th', { text: 'In force' }))),
      h('tbody', {}, ls.map(function (l) {
        return h('tr', {}, h('td', { text: l.license_id }), h('td', {}, link('#/operator/' + enc(l.operator_id), l.operator_id + (l.operator_name ? ' (' + l.operator_name + ')' : ''))),
          h('td', { text: l.status }), h('td', { class: 'nowrap', text: l.valid_from.slice(0, 10) + ' → ' + l.valid_to.slice(0, 10) }),
          h('td', { class: 'num', text: l.licensed_capacity_kw !== undefined ? num(l.licensed_capacity_kw) : '—' }),
          h('td', {}, l.in_force ? h('span', { class: 'st st-resolved', text: 'yes' }) : h('span', { class: 'st st-open', text: 'no' })));
      })));
  }

  function dailyChart(name, daily) {
    return chart(name, {
      title: 'Energy per settlement day (UTC+5): metered consumption vs marketplace purchases', yLabel: 'kWh per day', height: 220,
      x: daily.map(function (d, i) { return i; }),
      categories: daily.map(function (d) { return d.day; }),
      empty: 'No consumption or purchases in the window.',
      series: [
        { label: 'Consumed', values: daily.map(function (d) { return d.consumed_kwh; }), stroke: '#1f5fa8', fill: 'rgba(31,95,168,.55)', bars: true, barSize: 0.32, align: -1, unit: 'kWh' },
        { label: 'Purchased', values: daily.map(function (d) { return d.purchased_kwh; }), stroke: '#2e7d32', fill: 'rgba(46,125,50,.55)', bars: true, barSize: 0.32, align: 1, unit: 'kWh' }
      ]
    });
  }

  function powerChart(name, x, metered, registered, title) {
    return chart(name, {
      title: title, yLabel: 'kW', x: x, empty: 'No readings from this site\'s meters in the window.',
      series: [
        { label: 'Metered power', values: metered, stroke: '#1f5fa8', fill: 'rgba(31,95,168,.08)', width: 2, unit: 'kW' },
        { label: 'Registered capacity', values: registered, stroke: '#a15c00', width: 2, step: true, unit: 'kW' }
      ]
    });
  }

  function sumDaily(daily) {
    var c = 0, p = 0, s = 0;
    daily.forEach(function (d) { c += d.consumed_kwh; p += d.purchased_kwh; s += d.shortfall_kwh; });
    return { consumed: c, purchased: p, shortfall: s };
  }

  function purchaseTable(ps) {
    if (!ps.length) return h('p', { class: 'muted', text: 'No purchases in the window.' });
    var shown = ps.slice(0, 200);
    return h('div', {}, h('table', { class: 'purchases' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Transaction' }), h('th', { text: 'When (UTC+5)' }), h('th', { text: 'Operator' }), h('th', { text: 'Site' }),
        h('th', { class: 'num', text: 'MWh' }), h('th', { class: 'num', text: 'Price KZT/MWh' }))),
      h('tbody', {}, shown.map(function (x) {
        return h('tr', {}, h('td', { text: x.tx_id }), h('td', { class: 'nowrap', text: fmtTime(x.ts) }), h('td', { text: x.operator_id }),
          h('td', { text: x.site_id || '—' }), h('td', { class: 'num', text: num(x.mwh, 3) }), h('td', { class: 'num', text: x.price_kzt_per_mwh !== undefined ? num(x.price_kzt_per_mwh) : '—' }));
      }))), ps.length > shown.length ? h('p', { class: 'muted', text: 'First ' + shown.length + ' of ' + ps.length + '.' }) : null);
  }

  function pageSite(id, p) {
    var v = view();
    clear(main()).appendChild(h('p', { class: 'muted', text: 'Loading site ' + id + '…' }));
    api('/api/v1/sites/' + enc(id) + qs(pageWindow(p, '7d'))).then(function (d) {
      if (!v.alive()) return;
      var tot = sumDaily(d.daily);
      var peak = 0, over = 0;
      d.hourly.forEach(function (r) { peak = Math.max(peak, r.metered_kw); if (r.metered_kw > r.registered_kw) over++; });
      var rigs = d.rigs.slice(0, 100);
      clear(main()).appendChild(h('section', { id: 'site', dataset: windowData({ siteId: id }, d) },
        h('h1', {}, 'Site ' + id + ' ', h('span', { class: 'muted', text: d.oblast || '' })),
        h('div', { class: 'filters' }, sinceBar('#/site/' + enc(id), p, '7d', ['2d', '7d', '30d']), windowNote(d, p),
          h('span', {}, 'Operators: ', d.operators.map(function (o, i) { return [i ? ', ' : '', link('#/operator/' + enc(o), o)]; }))),
        h('div', { class: 'cards' },
          card('Active registered rigs', nf0.format(d.fleet.machines)), card('Registered capacity kW', num(d.fleet.total_w / 1000)),
          card('Peak metered kW', num(peak), peak > d.fleet.total_w / 1000), card('Hours above capacity', nf0.format(over), over > 0),
          card('Consumed kWh', num(tot.consumed)), card('Purchased kWh', num(tot.purchased)), card('Shortfall kWh', num(tot.shortfall), tot.shortfall > 0)),
        powerChart('site-power', d.hourly.map(function (r) { return secs(r.hour); }), d.hourly.map(function (r) { return r.metered_kw; }), d.hourly.map(function (r) { return r.registered_kw; }),
          'Hourly metered power vs registered capacity of the active rigs'),
        dailyChart('site-daily', d.daily),
        h('h2', { text: 'Licences' }), licenceTable(d.licences),
        h('h2', { text: 'Alerts' }), d.alerts.length ? alertTable(d.alerts, null, true) : h('p', { class: 'muted', text: 'No alerts.' }),
        h('div', { class: 'grid2' },
          h('div', {}, h('h2', { text: 'Meters' }), h('table', {},
            h('thead', {}, h('tr', {}, h('th', { text: 'Meter' }), h('th', { text: 'Feeder' }), h('th', { text: 'Role' }), h('th', { text: 'Class' }))),
            h('tbody', {}, d.meters.map(function (m) {
              return h('tr', {}, h('td', { text: m.meter_id }), h('td', {}, link('#/feeder/' + enc(m.feeder_id), m.feeder_id)), h('td', { text: m.role }), h('td', { text: m.class }));
            })))),
          h('div', {}, h('h2', { text: 'Capacity changes in the window' }), d.capacity_changes.length ? h('table', {},
            h('thead', {}, h('tr', {}, h('th', { text: 'When (UTC+5)' }), h('th', { class: 'num', text: 'Rigs' }), h('th', { class: 'num', text: 'Capacity kW' }))),
            h('tbody', {}, d.capacity_changes.map(function (c) {
              return h('tr', {}, h('td', { text: fmtTime(c.at) }), h('td', { class: 'num', text: nf0.format(c.rigs) }), h('td', { class: 'num', text: num(c.capacity_w / 1000) }));
            }))) : h('p', { class: 'muted', text: 'None.' }))),
        h('h2', { text: 'Active rigs (' + d.rigs.length + ')' }),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Rig' }), h('th', { text: 'Serial' }), h('th', { text: 'Model' }), h('th', { class: 'num', text: 'Rated W' }), h('th', { text: 'Licence' }))),
          h('tbody', {}, rigs.map(function (r) {
            return h('tr', {}, h('td', { text: r.rig_id }), h('td', { text: r.serial }), h('td', { text: r.model || '—' }), h('td', { class: 'num', text: nf0.format(r.rated_power_w) }), h('td', { text: r.license_id }));
          }))),
        d.rigs.length > rigs.length ? h('p', { class: 'muted', text: 'First ' + rigs.length + ' of ' + d.rigs.length + '.' }) : null,
        h('h2', { text: 'Purchases' }), purchaseTable(d.purchases)));
    }).catch(function (e) { if (v.alive()) clear(main()).appendChild(fail(e)); });
  }

  // The operator page sums its sites' hourly power; an operator with very
  // many sites gets the sum of the first MAX_OP_SITES (said on the page).
  var MAX_OP_SITES = 12;

  function pageOperator(id, p) {
    var v = view();
    clear(main()).appendChild(h('p', { class: 'muted', text: 'Loading operator ' + id + '…' }));
    api('/api/v1/operators/' + enc(id) + qs(pageWindow(p, '30d'))).then(function (d) {
      if (!v.alive()) return;
      var tot = sumDaily(d.daily);
      var powerBox = h('div', {}, h('div', { class: 'chart' }, h('div', { class: 'title', text: 'Hourly metered power vs registered capacity' }), h('p', { class: 'muted', text: 'Loading the sites…' })));
      clear(main()).appendChild(h('section', { id: 'operator', dataset: windowData({ operatorId: id }, d) },
        h('h1', {}, 'Operator ' + id + ' ', h('span', { class: 'muted', text: (d.licences[0] && d.licences[0].operator_name) || '' })),
        h('div', { class: 'filters' }, sinceBar('#/operator/' + enc(id), p, '30d', ['7d', '30d']), windowNote(d, p)),
        h('div', { class: 'cards' },
          card('Active registered rigs', nf0.format(d.fleet.machines)), card('Registered capacity kW', num(d.fleet.total_w / 1000)),
          card('Sites', String(d.sites.length)), card('Licences in force', d.licences.filter(function (l) { return l.in_force; }).length + ' / ' + d.licences.length, d.licences.some(function (l) { return !l.in_force; })),
          card('Consumed kWh', num(tot.consumed)), card('Purchased kWh', num(tot.purchased)), card('Shortfall kWh', num(tot.shortfall), tot.shortfall > 0)),
        powerBox,
        dailyChart('operator-daily', d.daily),
        h('h2', { text: 'Licences' }), licenceTable(d.licences),
        h('h2', { text: 'Alerts' }), d.alerts.length ? alertTable(d.alerts, null, true) : h('p', { class: 'muted', text: 'No alerts.' }),
        h('h2', { text: 'Sites' }),
        h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Site' }), h('th', { class: 'num', text: 'Active rigs' }), h('th', { class: 'num', text: 'Registered kW' }), h('th', { class: 'num', text: 'Consumed kWh in window' }))),
          h('tbody', {}, d.sites.map(function (s) {
            return h('tr', {}, h('td', {}, link('#/site/' + enc(s.site_id), s.site_id)), h('td', { class: 'num', text: nf0.format(s.machines) }),
              h('td', { class: 'num', text: num(s.registered_kw) }), h('td', { class: 'num', text: num(s.consumed_kwh) }));
          }))),
        h('h2', { text: 'Purchases' }), purchaseTable(d.purchases)));
      // Power over time comes from the site pages of exactly this window.
      var sites = d.sites.slice(0, MAX_OP_SITES);
      Promise.all(sites.map(function (s) { return api('/api/v1/sites/' + enc(s.site_id) + qs({ since: d.from, until: d.to })); })).then(function (pages) {
        if (!v.alive()) return;
        var byHour = {};
        pages.forEach(function (sp) {
          sp.hourly.forEach(function (r) {
            var k = secs(r.hour);
            var e = byHour[k] || (byHour[k] = [0, 0]);
            e[0] += r.metered_kw;
            e[1] += r.registered_kw;
          });
        });
        var x = Object.keys(byHour).map(Number).sort(function (a, b) { return a - b; });
        var title = 'Hourly metered power vs registered capacity' + (d.sites.length > sites.length ? ' (first ' + sites.length + ' of ' + d.sites.length + ' sites)' : ', all sites');
        clear(powerBox).appendChild(powerChart('operator-power', x, x.map(function (k) { return byHour[k][0]; }), x.map(function (k) { return byHour[k][1]; }), title));
      }).catch(function (e) { if (v.alive()) clear(powerBox).appendChild(fail(e)); });
    }).catch(function (e) { if (v.alive()) clear(main()).appendChild(fail(e)); });
  }

  // ---------------------------------------------------------- search

  function hitHref(hit) {
    var r = hit.record || {};
    switch (hit.type) {
      case 'site': return '#/site/' + enc(hit.id);
      case 'operator': return '#/operator/' + enc(hit.id);
      case 'feeder': return '#/feeder/' + enc(hit.id);
      case 'meter': return r.site_id ? '#/site/' + enc(r.site_id) : r.feeder_id ? '#/feeder/' + enc(r.feeder_id) : null;
      case 'rig': return r.site_id ? '#/site/' + enc(r.site_id) : null;
      case 'licence': return r.operator_id ? '#/operator/' + enc(r.operator_id) : null;
    }
    return null;
  }

  function pageSearch(p) {
    var v = view();
    var q = p.q || '';
    var input = h('input', { id: 'search-q', value: q, size: 40, placeholder: 'serial, rig, site, operator, licence, meter or feeder id', autocomplete: 'off' });
    var out = h('div', { id: 'search-results' });
    clear(main()).appendChild(h('section', { id: 'search' },
      h('h1', { text: 'Registry search' }),
      h('form', { class: 'filters', onsubmit: function (e) { e.preventDefault(); location.hash = '#/search' + qs({ q: input.value.trim() }); } },
        input, h('button', { class: 'primary', type: 'submit', text: 'Search' }),
        h('span', { class: 'muted', text: 'Exact id or serial, as the registry stands now.' })),
      out));
    input.focus();
    if (!q) return;
    out.appendChild(h('p', { class: 'muted', text: 'Searching…' }));
    api('/api/v1/registry/search' + qs({ q: q })).then(function (d) {
      if (!v.alive()) return;
      clear(out);
      if (!d.hits.length) { out.appendChild(h('p', { class: 'muted', text: 'Nothing in the registry is called "' + q + '".' })); return; }
      out.appendChild(h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Type' }), h('th', { text: 'Id' }), h('th', { text: 'What' }), h('th', { text: 'Record' }))),
        h('tbody', {}, d.hits.map(function (hit) {
          return h('tr', { dataset: { hitType: hit.type } }, h('td', {}, h('span', { class: 'tag', text: hit.type })),
            h('td', {}, link(hitHref(hit), hit.id)), h('td', { text: hit.what }),
            h('td', {}, hit.record ? h('details', {}, h('summary', { text: 'show' }), h('pre', { text: JSON.stringify(hit.record, null, 2) })) : '—'));
        }))));
    }).catch(function (e) { if (v.alive()) clear(out).appendChild(fail(e)); });
  }

  // ------------------------------------------------------ calculator

  function pageCalc(p) {
    var v = view();
    function field(id, label, val, attrs) {
      var a = { id: 'calc-' + id, name: id, value: val === undefined ? '' : val };
      for (var k in attrs) a[k] = attrs[k];
      return h('label', {}, label, h('input', a));
    }
    var out = h('div', { id: 'calc-result' });
    var form = h('form', {
      class: 'panel', id: 'calc-form', onsubmit: function (e) {
        e.preventDefault();
        var ps = {};
        ['machines', 'watts', 'model', 'hours', 'days', 'tariff', 'revenue'].forEach(function (k) { ps[k] = $('#calc-' + k).value.trim(); });
        if (ps.watts) ps.model = '';
        location.hash = '#/calc' + qs(ps);
      }
    },
    h('div', { class: 'calc-form' },
      field('machines', 'Machines', p.machines || '', { type: 'number', min: '1', step: '1', required: true, placeholder: 'e.g. 1000' }),
      field('watts', 'Watts per machine', p.watts || '', { type: 'number', min: '0', step: 'any', placeholder: 'e.g. 3250' }),
      field('model', 'or model (from the catalogue)', p.model || '', { placeholder: 'e.g. Antminer S19j Pro' }),
      field('hours', 'Hours per day', p.hours || '24', { type: 'number', min: '0.1', max: '24', step: 'any' }),
      field('days', 'Days per month', p.days || '30', { type: 'number', min: '1', max: '31', step: '1' }),
      field('tariff', 'Tariff KZT per kWh', p.tariff || '25', { type: 'number', min: '0', step: 'any' }),
      field('revenue', 'Monthly revenue KZT (optional)', p.revenue || '', { type: 'number', min: '0', step: 'any', placeholder: 'for profit tax and AIFC share' })),
    h('div', { class: 'row-end' }, h('button', { id: 'calc-go', class: 'primary', type: 'submit', text: 'Calculate' })));
    clear(main()).appendChild(h('section', { id: 'calc' },
      h('h1', {}, 'Compliance calculator ', h('span', { class: 'muted', text: '— the same figures as rigwatch calc' })),
      form, out));
    if (!p.machines) return;
    api('/api/v1/calc' + qs({ machines: p.machines, watts: p.watts, model: p.watts ? '' : p.model, hours: p.hours, days: p.days, tariff: p.tariff, revenue: p.revenue })).then(function (r) {
      if (!v.alive()) return;
      clear(out);
      function big(id, k, val, unit) {
        return h('div', { class: 'card', id: id }, h('div', { class: 'k', text: k }), h('div', { class: 'big' }, h('span', { class: 'value', text: val }), unit ? h('span', { class: 'unit', text: ' ' + unit }) : null));
      }
      add(out, [
        h('div', { class: 'cards' },
          big('calc-kw', 'Total power', num(r.total_power_kw, 3), 'kW'),
          big('calc-mwh', 'Monthly consumption', num(r.monthly_mwh, 3), 'MWh'),
          big('calc-tx', 'Marketplace transactions required (≤ 1 MWh each)', nf0.format(r.marketplace_transactions), 'transactions'),
          big('calc-cost', 'Estimated monthly electricity cost', nf0.format(r.monthly_cost_kzt), 'KZT')),
        r.revenue_kzt !== undefined ? h('div', { class: 'cards' },
          big('calc-revenue', 'Revenue', nf0.format(r.revenue_kzt), 'KZT'),
          big('calc-profit', 'Profit (revenue − electricity)', nf0.format(r.profit_kzt), 'KZT'),
          big('calc-tax', 'Profit tax (15%)', nf0.format(r.profit_tax_kzt), 'KZT'),
          big('calc-aifc', 'To be sold via AIFC exchanges (75% of revenue)', nf0.format(r.aifc_sale_kzt), 'KZT')) : null,
        h('p', { class: 'muted', text: nf0.format(r.machines) + ' machines × ' + num(r.watts_per_machine, 3) + ' W' + (r.model ? ' (' + r.model + ')' : '') +
          ', ' + num(r.hours_per_day, 3) + ' h a day, ' + r.days_per_month + ' days a month.' })
      ]);
      out.dataset.done = '1';
    }).catch(function (e) { if (v.alive()) { clear(out).appendChild(fail(e)); out.dataset.done = 'error'; } });
  }

  // ---------------------------------------------------------- router

  function parseHash() {
    var hs = location.hash.replace(/^#\/?/, '');
    var qi = hs.indexOf('?');
    var path = qi >= 0 ? hs.slice(0, qi) : hs;
    var params = {};
    if (qi >= 0) {
      hs.slice(qi + 1).split('&').forEach(function (kv) {
        if (!kv) return;
        var i = kv.indexOf('=');
        var k = decodeURIComponent(i >= 0 ? kv.slice(0, i) : kv);
        params[k] = i >= 0 ? decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' ')) : '';
      });
    }
    var parts = path.split('/').map(function (x) { return decodeURIComponent(x); });
    return { page: parts[0] || 'alerts', arg: parts.slice(1).join('/'), params: params };
  }

  function route() {
    if (tokenFromURL()) return boot();
    var r = parseHash();
    S.plots = [];
    RW.charts = {};
    document.querySelectorAll('#nav a').forEach(function (a) {
      var n = a.dataset.nav;
      a.classList.toggle('active', n === r.page || (n === 'alerts' && r.page === 'alert') || (n === 'feeders' && r.page === 'feeder'));
    });
    if (!S.token || r.page === 'login') {
      if (S.token && S.who) { location.hash = '#/alerts'; return; }
      return pageLogin();
    }
    if (!S.who) return; // boot() routes again once whoami answers
    document.body.dataset.page = r.page;
    switch (r.page) {
      case 'alerts': return pageBoard(r.params);
      case 'alert': return pageAlert(r.arg);
      case 'feeders': return pageFeeders(r.params);
      case 'feeder': return pageFeeder(r.arg, r.params);
      case 'site': return pageSite(r.arg, r.params);
      case 'operator': return pageOperator(r.arg, r.params);
      case 'search': return pageSearch(r.params);
      case 'calc': return pageCalc(r.params);
    }
    clear(main()).appendChild(h('p', { class: 'error', text: 'No such page: ' + location.hash }));
  }

  function boot() {
    tokenFromURL();
    S.token = sessionStorage.getItem(TOKEN_KEY);
    if (!S.token) { route(); return; }
    api('/api/v1/whoami').then(function (who) { signedIn(who); route(); }, function (e) {
      if (e.status !== 401) clear(main()).appendChild(fail(e));
    });
  }

  $('#logout').addEventListener('click', function () { signOut(''); });
  window.addEventListener('hashchange', route);
  boot();
})();
