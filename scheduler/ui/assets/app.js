// Switchyard web UI: a single page over the public Marathon v2 API.
// Plain JavaScript, no dependencies; everything it needs is served from
// /ui/ by the scheduler itself.
'use strict';
(function () {
  // The API root is the parent of /ui/, so the UI also works behind a
  // path-prefixing proxy.
  // It is absolute and without user:password, which the page's own URL
  // may carry (http://user:pass@host/ui/) and fetch refuses.
  const BASE = location.protocol + '//' + location.host + new URL('../', document.baseURI).pathname;
  const EVENT_TYPES = ['api_post_event', 'status_update_event', 'instance_changed_event',
    'health_status_changed_event', 'instance_health_changed_event', 'failed_health_check_event',
    'unhealthy_instance_kill_event', 'add_health_check_event', 'remove_health_check_event',
    'deployment_info', 'deployment_step_success', 'deployment_step_failure', 'deployment_success',
    'deployment_failed', 'group_change_success', 'group_change_failed', 'app_terminated_event',
    'unknown_instance_terminated_event'];
  const STATUSES = ['Running', 'Deploying', 'Suspended', 'Waiting', 'Delayed', 'Unhealthy'];

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s === undefined || s === null ? '' : s).replace(/[&<>"']/g, (c) => ESC[c]);

  // ---- state ---------------------------------------------------------
  const S = {
    apps: [], queue: new Map(), deployments: [], loaded: false,
    app: null, appErr: null, versions: null, versionView: null,
    agents: null,
    filters: { q: '', status: '', health: '', label: '', group: '' },
    sort: { key: 'id', dir: 1 },
    selected: new Set(),
    events: 0, live: false,
    lastRenderMs: 0,
    editor: null, // {text, details, mode, form}
  };
  window.__switchyard = S; // for tests and the curious

  // ---- API -----------------------------------------------------------
  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const r = await fetch(BASE + path.replace(/^\//, ''), opts);
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
    if (!r.ok) {
      const err = new Error((data && data.message) || (r.status + ' ' + r.statusText));
      err.status = r.status;
      err.data = data;
      throw err;
    }
    return data;
  }
  const appPath = (id) => 'v2/apps' + id.split('/').map(encodeURIComponent).join('/');

  // ---- helpers -------------------------------------------------------
  function flash(msg, isError) {
    const f = $('#flash');
    f.textContent = msg;
    f.className = 'flash' + (isError ? ' error' : '');
    f.hidden = false;
    clearTimeout(flash.t);
    flash.t = setTimeout(() => { f.hidden = true; }, isError ? 10000 : 4000);
  }
  function parentOf(id) { const i = id.lastIndexOf('/'); return i <= 0 ? '/' : id.slice(0, i); }
  function baseName(id) { return id.slice(id.lastIndexOf('/') + 1); }
  function fmtTime(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? esc(s) : esc(d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
  }
  function num(v, digits) { return v === undefined || v === null ? '' : String(parseFloat((+v).toFixed(digits === undefined ? 1 : digits))); }

  // dialog asks for confirmation or a value; resolves null on cancel.
  function dialog(title, text, input) {
    const dlg = $('#dlg');
    $('#dlg-title').textContent = title;
    $('#dlg-text').textContent = text || '';
    const lbl = $('#dlg-input-label');
    lbl.hidden = !input;
    if (input) {
      $('#dlg-input-name').textContent = input.label;
      $('#dlg-input').value = input.value;
    }
    return new Promise((resolve) => {
      const done = (v) => {
        $('#dlg-form').onsubmit = null;
        $('#dlg-cancel').onclick = null;
        dlg.onclose = null;
        if (dlg.open) dlg.close();
        resolve(v);
      };
      $('#dlg-form').onsubmit = (e) => { e.preventDefault(); done(input ? $('#dlg-input').value : true); };
      $('#dlg-cancel').onclick = () => done(null);
      dlg.onclose = () => done(null);
      dlg.showModal();
      if (input) $('#dlg-input').select();
    });
  }

  // ---- app status and health ----------------------------------------
  function appStatus(app) {
    const q = S.queue.get(app.id);
    if (q && q.delay && !q.delay.overdue && q.delay.timeLeftSeconds > 0) return 'Delayed';
    // Instances no agent can take (offers declined): waiting for
    // resources, deployment or not.
    if (q && declined(q).length) return 'Waiting';
    if (app.deployments && app.deployments.length) return 'Deploying';
    if (q) return 'Waiting';
    if (app.instances === 0 && !app.tasksRunning) return 'Suspended';
    if (app.tasksUnhealthy > 0) return 'Unhealthy';
    return 'Running';
  }
  function declined(q) {
    return ((q.processedOffersSummary || {}).rejectSummaryLastOffers || []).filter((x) => x.declined);
  }
  function health(app) {
    const healthy = app.tasksHealthy || 0, unhealthy = app.tasksUnhealthy || 0, staged = app.tasksStaged || 0;
    const unknown = Math.max(0, (app.tasksRunning || 0) - healthy - unhealthy);
    return { healthy, unhealthy, unknown, staged };
  }
  function healthBar(h, total) {
    const sum = h.healthy + h.unhealthy + h.unknown + h.staged;
    const n = Math.max(total || 0, sum, 1);
    const seg = (k) => h[k] ? '<span class="h-' + k + '" style="width:' + (100 * h[k] / n).toFixed(2) + '%"></span>' : '';
    const title = 'healthy ' + h.healthy + ', unhealthy ' + h.unhealthy + ', unknown ' + h.unknown + ', staged ' + h.staged;
    return '<div class="health" title="' + title + '">' + seg('healthy') + seg('unhealthy') + seg('unknown') + seg('staged') + '</div>';
  }
  function servicePorts(app) {
    if (app.portDefinitions && app.portDefinitions.length) return app.portDefinitions.map((p) => p.port);
    if (app.container && app.container.portMappings) return app.container.portMappings.map((p) => p.servicePort).filter((p) => p);
    return app.ports || [];
  }
  function vhosts(app) {
    const out = [];
    for (const [k, v] of Object.entries(app.labels || {})) {
      if (/^HAPROXY_\d+_VHOST$/.test(k)) out.push(...v.split(',').map((s) => s.trim()).filter(Boolean));
    }
    return out;
  }

  // ---- data loading and live updates --------------------------------
  let refreshing = null, again = false, timer = null;
  function scheduleRefresh(delay) {
    if (timer) return;
    timer = setTimeout(() => { timer = null; refresh(); }, delay === undefined ? 150 : delay);
  }
  async function refresh() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      try {
        const route = parseRoute();
        const jobs = [
          api('GET', 'v2/apps?embed=apps.counts&embed=apps.deployments&embed=apps.lastTaskFailure'),
          api('GET', 'v2/queue'),
          api('GET', 'v2/deployments'),
        ];
        if (route.name === 'app') {
          jobs.push(api('GET', appPath(route.id) + '?embed=app.tasks&embed=app.counts&embed=app.deployments&embed=app.lastTaskFailure&embed=app.readiness')
            .then((r) => ({ app: r.app }), (e) => ({ err: e })));
        }
        if (route.name === 'agents') jobs.push(api('GET', 'ui/api/agents'));
        const [apps, queue, deps, extra] = await Promise.all(jobs);
        S.apps = apps.apps || [];
        S.queue = new Map((queue.queue || []).filter((q) => q.app).map((q) => [q.app.id, q]));
        S.deployments = deps || [];
        if (route.name === 'app') {
          S.app = extra.app || null;
          S.appErr = extra.err || null;
        }
        if (route.name === 'agents') S.agents = extra.agents || [];
        S.loaded = true;
        render();
      } catch (e) {
        flash('Cannot load from the API: ' + e.message, true);
      }
    })();
    await refreshing;
    refreshing = null;
    if (again) { again = false; scheduleRefresh(0); }
  }

  let es = null, pollTimer = null;
  function connectEvents() {
    if (es) es.close();
    es = new EventSource(BASE + 'v2/events', { withCredentials: true });
    const live = $('#live');
    es.onopen = () => {
      S.live = true;
      live.className = 'live on';
      live.textContent = 'live';
      clearInterval(pollTimer);
      pollTimer = null;
      scheduleRefresh(0);
    };
    es.onerror = () => {
      S.live = false;
      live.className = 'live off';
      live.textContent = 'reconnecting';
      // While the stream is down, poll so the page does not go stale;
      // EventSource reconnects by itself.
      if (!pollTimer) pollTimer = setInterval(() => scheduleRefresh(0), 5000);
      // A refused stream (401, 403, a proxy's 502) is closed for good;
      // try again later ourselves.
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(connectEvents.retry);
        connectEvents.retry = setTimeout(connectEvents, 5000);
      }
    };
    const onEvent = () => {
      S.events++;
      live.dataset.events = S.events;
      scheduleRefresh();
    };
    for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
  }

  // ---- routing -------------------------------------------------------
  function parseRoute() {
    const h = decodeURIComponent(location.hash.replace(/^#/, '')) || '/apps';
    const [path, qs] = h.split('?');
    const params = new URLSearchParams(qs || '');
    if (path.startsWith('/app/')) return { name: 'app', id: path.slice(4), tab: params.get('tab') || 'tasks' };
    if (path === '/create') return { name: 'create' };
    if (path.startsWith('/edit/')) return { name: 'edit', id: path.slice(5) };
    if (path === '/deployments') return { name: 'deployments' };
    if (path === '/agents') return { name: 'agents' };
    return { name: 'apps', group: params.get('group') || '/' };
  }
  let lastRouteKey = '';
  function onRoute() {
    const r = parseRoute();
    const key = r.name + (r.id || '');
    if (key !== lastRouteKey) {
      lastRouteKey = key;
      S.selected.clear();
      S.versions = null;
      S.versionView = null;
      if (r.name !== 'app') { S.app = null; S.appErr = null; }
      if (r.name === 'create' || r.name === 'edit') S.editor = null;
    }
    for (const a of $$('[data-nav]')) a.classList.toggle('active', a.dataset.nav === r.name || (r.name === 'app' && a.dataset.nav === 'apps'));
    render();
    if (r.name === 'app' || r.name === 'agents' || !S.loaded) scheduleRefresh(0);
    if (r.name === 'app' && r.tab === 'config' && !S.versions) loadVersions(r.id);
    if (r.name === 'edit') loadEdit(r.id);
  }

  function render() {
    const r = parseRoute();
    const n = S.deployments.length;
    const dc = $('#dep-count');
    dc.hidden = n === 0;
    dc.textContent = n;
    const view = $('#view');
    // Editors keep their own DOM (typing must not be interrupted by live
    // updates); everything else re-renders from state.
    if (r.name === 'create' || r.name === 'edit') {
      if (!view.querySelector('#editor-page') || view.dataset.route !== r.name + (r.id || '')) {
        view.dataset.route = r.name + (r.id || '');
        renderEditorPage(view, r);
      }
      return;
    }
    view.dataset.route = r.name;
    if (!S.loaded) { view.innerHTML = '<p class="muted">Loading…</p>'; return; }
    if (r.name === 'apps') renderApps(view, r);
    else if (r.name === 'app') renderApp(view, r);
    else if (r.name === 'deployments') renderDeployments(view);
    else if (r.name === 'agents') renderAgents(view);
  }

  // ---- applications list --------------------------------------------
  const COLUMNS = [
    { key: 'id', label: 'Name' },
    { key: 'status', label: 'Status' },
    { key: 'running', label: 'Running', num: true },
    { key: 'health', label: 'Health' },
    { key: 'cpus', label: 'CPU', num: true },
    { key: 'mem', label: 'Memory', num: true },
    { key: 'group', label: 'HAPROXY_GROUP' },
    { key: 'ports', label: 'Service ports' },
    { key: 'vhosts', label: 'VHosts' },
  ];
  function row(app) {
    const h = health(app);
    return {
      app, id: app.id, status: appStatus(app), running: app.tasksRunning || 0, instances: app.instances,
      h, health: h.healthy - h.unhealthy * 1000, cpus: app.cpus, mem: app.mem,
      group: (app.labels || {}).HAPROXY_GROUP || '', ports: servicePorts(app), vhosts: vhosts(app),
    };
  }
  function matches(rw, f) {
    if (f.q) {
      const q = f.q.toLowerCase();
      const hay = (rw.id + ' ' + (rw.app.cmd || '') + ' ' + Object.entries(rw.app.labels || {}).map((e) => e.join('=')).join(' ')).toLowerCase();
      if (!hay.includes(q)) return false;
    }
    if (f.status && rw.status !== f.status) return false;
    if (f.health && !rw.h[f.health]) return false;
    if (f.group && rw.group !== f.group) return false;
    if (f.label) {
      const [k, v] = f.label.split('=');
      const labels = rw.app.labels || {};
      if (!(k in labels)) return false;
      if (v !== undefined && labels[k] !== v) return false;
    }
    return true;
  }
  // One collator: localeCompare with options builds one per call, which
  // is what makes sorting 1,000 rows slow.
  const collator = new Intl.Collator(undefined, { numeric: true });
  function compare(a, b, key) {
    const x = a[key], y = b[key];
    if (Array.isArray(x)) return collator.compare(x.join(','), y.join(','));
    if (typeof x === 'number' || typeof y === 'number') return (x || 0) - (y || 0);
    return collator.compare(String(x), String(y));
  }
  function crumbs(id, leafIsApp) {
    const parts = id.split('/').filter(Boolean);
    let html = '<div class="crumbs" id="crumbs"><a href="#/apps">Applications</a>';
    let path = '';
    parts.forEach((p, i) => {
      path += '/' + p;
      const last = i === parts.length - 1;
      html += ' / ' + (last && leafIsApp ? '<span>' + esc(p) + '</span>'
        : '<a href="#/apps?group=' + encodeURIComponent(path) + '">' + esc(p) + '</a>');
    });
    return html + '</div>';
  }
  function renderApps(view, r) {
    const t0 = performance.now();
    const f = S.filters;
    const filtering = !!(f.q || f.status || f.health || f.label || f.group);
    const group = r.group.replace(/\/+$/, '') || '/';
    const prefix = group === '/' ? '/' : group + '/';
    const rows = [];
    const folders = new Map();
    const groups = new Set();
    for (const app of S.apps) {
      const g = (app.labels || {}).HAPROXY_GROUP;
      if (g) groups.add(g);
      if (!app.id.startsWith(prefix)) continue;
      const rw = row(app);
      if (!matches(rw, f)) continue;
      const rest = app.id.slice(prefix.length);
      if (!filtering && rest.includes('/')) {
        // In a subfolder: roll it up into the folder's row.
        const name = rest.slice(0, rest.indexOf('/'));
        const fo = folders.get(name) || { name, apps: 0, running: 0, instances: 0, cpus: 0, mem: 0, h: { healthy: 0, unhealthy: 0, unknown: 0, staged: 0 } };
        fo.apps++; fo.running += rw.running; fo.instances += app.instances; fo.cpus += app.cpus * app.instances; fo.mem += app.mem * app.instances;
        for (const k of Object.keys(fo.h)) fo.h[k] += rw.h[k];
        folders.set(name, fo);
        continue;
      }
      rows.push(rw);
    }
    const { key, dir } = S.sort;
    rows.sort((a, b) => dir * compare(a, b, key) || collator.compare(a.id, b.id));
    const fo = Array.from(folders.values()).sort((a, b) => a.name.localeCompare(b.name));

    const opt = (v, label, cur) => '<option value="' + esc(v) + '"' + (v === cur ? ' selected' : '') + '>' + esc(label) + '</option>';
    let html = '<h1>Applications</h1>' + (group !== '/' ? crumbs(group, false) : '');
    html += '<div class="toolbar">' +
      '<input type="search" id="f-q" placeholder="Search by id, command or label" value="' + esc(f.q) + '">' +
      '<select id="f-status">' + opt('', 'Any status', f.status) + STATUSES.map((s) => opt(s, s, f.status)).join('') + '</select>' +
      '<select id="f-health">' + opt('', 'Any health', f.health) + ['healthy', 'unhealthy', 'unknown', 'staged'].map((s) => opt(s, 'Has ' + s, f.health)).join('') + '</select>' +
      '<select id="f-group">' + opt('', 'Any HAPROXY_GROUP', f.group) + Array.from(groups).sort().map((g) => opt(g, g, f.group)).join('') + '</select>' +
      '<input id="f-label" placeholder="label or label=value" value="' + esc(f.label) + '">' +
      '<span class="muted" id="apps-count">' + rows.length + ' application' + (rows.length === 1 ? '' : 's') + '</span>' +
      '<span class="legend"><span><i class="dot h-healthy"></i>healthy</span><span><i class="dot h-unhealthy"></i>unhealthy</span><span><i class="dot h-unknown"></i>unknown</span><span><i class="dot h-staged"></i>staged</span></span>' +
      '</div>';
    html += '<table id="apps-table"><thead><tr>' + COLUMNS.map((c) =>
      '<th class="sortable' + (c.num ? ' num' : '') + (key === c.key ? (dir > 0 ? ' sorted-asc' : ' sorted-desc') : '') + '" data-sort="' + c.key + '">' + c.label + '</th>').join('') +
      '</tr></thead><tbody>';
    const parts = [];
    for (const f2 of fo) {
      const path = prefix + f2.name;
      parts.push('<tr class="group-row" data-group="' + esc(path) + '"><td>📁 <a href="#/apps?group=' + encodeURIComponent(path) + '">' + esc(f2.name) + '</a> <span class="muted">(' + f2.apps + ')</span></td><td></td>' +
        '<td class="num">' + f2.running + ' / ' + f2.instances + '</td><td>' + healthBar(f2.h, f2.instances) + '</td>' +
        '<td class="num">' + num(f2.cpus) + '</td><td class="num">' + num(f2.mem, 0) + ' MiB</td><td></td><td></td><td></td></tr>');
    }
    for (const rw of rows) {
      const name = filtering ? rw.id : rw.id.slice(prefix.length);
      parts.push('<tr class="app-row" data-app="' + esc(rw.id) + '"><td><a href="#/app' + esc(rw.id) + '">' + esc(name) + '</a></td>' +
        '<td class="status status-' + rw.status + '">' + rw.status + '</td>' +
        '<td class="num nowrap running">' + rw.running + ' / ' + rw.instances + '</td>' +
        '<td>' + healthBar(rw.h, rw.instances) + '</td>' +
        '<td class="num">' + num(rw.cpus) + '</td><td class="num">' + num(rw.mem, 0) + ' MiB</td>' +
        '<td>' + esc(rw.group) + '</td><td>' + rw.ports.map(esc).join(', ') + '</td>' +
        '<td>' + rw.vhosts.map((v) => '<span class="tag">' + esc(v) + '</span>').join('') + '</td></tr>');
    }
    if (!parts.length) parts.push('<tr><td colspan="9" class="muted">No applications' + (filtering ? ' match the filters' : '') + '. <a href="#/create">Create one</a>.</td></tr>');
    html += parts.join('') + '</tbody></table>';

    const focused = document.activeElement && document.activeElement.id;
    const caret = focused === 'f-q' || focused === 'f-label' ? document.activeElement.selectionStart : null;
    view.innerHTML = html;
    if (focused && $('#' + focused)) {
      const el = $('#' + focused);
      el.focus();
      if (caret !== null) el.setSelectionRange(caret, caret);
    }
    const set = (k) => (e) => { S.filters[k] = e.target.value; render(); };
    // Typing re-renders once the keys pause: with 1,000 apps a render
    // (layout included) takes a good part of a keystroke's time.
    const typed = (k) => (e) => {
      S.filters[k] = e.target.value;
      clearTimeout(renderApps.typing);
      renderApps.typing = setTimeout(render, 120);
    };
    $('#f-q').addEventListener('input', typed('q'));
    $('#f-label').addEventListener('input', typed('label'));
    $('#f-status').addEventListener('change', set('status'));
    $('#f-health').addEventListener('change', set('health'));
    $('#f-group').addEventListener('change', set('group'));
    for (const th of $$('th[data-sort]', view)) {
      th.addEventListener('click', () => {
        const k = th.dataset.sort;
        S.sort = { key: k, dir: S.sort.key === k ? -S.sort.dir : 1 };
        render();
      });
    }
    S.lastRenderMs = performance.now() - t0;
    if (S.firstListMs === undefined) S.firstListMs = performance.now();
    view.dataset.renderMs = S.lastRenderMs.toFixed(1);
  }

  // ---- application page ---------------------------------------------
  function renderApp(view, r) {
    if (S.appErr) {
      view.innerHTML = crumbs(r.id, true) + '<p class="err" id="app-missing">' + esc(S.appErr.status === 404 ? 'Application ' + r.id + ' does not exist.' : S.appErr.message) + '</p>';
      return;
    }
    const app = S.app;
    if (!app || app.id !== r.id) { view.innerHTML = crumbs(r.id, true) + '<p class="muted">Loading…</p>'; return; }
    const fromList = S.apps.find((a) => a.id === app.id);
    const status = appStatus(fromList || app);
    const h = health(app);
    let html = crumbs(app.id, true) + '<h1>' + esc(baseName(app.id)) + ' <span class="status status-' + status + '" id="app-status">' + status + '</span></h1>';
    html += '<div class="toolbar">' +
      '<span class="nowrap" id="app-running">' + (app.tasksRunning || 0) + ' of ' + app.instances + ' instances running</span>' + healthBar(h, app.instances) +
      '<button class="btn" id="act-scale">Scale</button>' +
      '<button class="btn" id="act-restart">Restart</button>' +
      (app.instances > 0 ? '<button class="btn" id="act-suspend">Suspend</button>' : '<button class="btn" id="act-resume">Resume</button>') +
      '<a class="btn" id="act-edit" href="#/edit' + esc(app.id) + '">Edit JSON</a>' +
      '<button class="btn danger" id="act-destroy">Destroy</button></div>';
    const deps = app.deployments || [];
    if (deps.length) {
      html += '<p class="deploying" id="app-deploying">' + (deps.length === 1 ? 'A deployment is' : deps.length + ' deployments are') +
        ' in progress: <a href="#/deployments">' + deps.map((d) => esc(d.id)).join(', ') + '</a></p>';
    }
    const tab = (k, label) => '<a href="#/app' + esc(app.id) + '?tab=' + k + '" id="tab-' + k + '" class="' + (r.tab === k ? 'active' : '') + '">' + label + '</a>';
    html += '<div class="tabs">' + tab('tasks', 'Tasks') + tab('config', 'Configuration') + tab('debug', 'Debug') + '</div>';
    if (r.tab === 'config' && S.versions && !S.versions.includes(app.version) && !loadVersions.busy) loadVersions(app.id);
    if (r.tab === 'config') html += configTab(app);
    else if (r.tab === 'debug') html += debugTab(app);
    else html += tasksTab(app);
    view.innerHTML = html;

    $('#act-scale').onclick = async () => {
      const v = await dialog('Scale ' + app.id, 'How many instances?', { label: 'Instances', value: String(app.instances) });
      if (v === null) return;
      act((f) => api('PUT', forced(appPath(app.id), f), { instances: parseInt(v, 10) }), 'Scaling ' + app.id + ' to ' + v);
    };
    $('#act-restart').onclick = async () => {
      if (await dialog('Restart ' + app.id + '?', 'Every task is replaced by a new one.')) act((f) => api('POST', forced(appPath(app.id) + '/restart', f), {}), 'Restarting ' + app.id);
    };
    if ($('#act-suspend')) $('#act-suspend').onclick = async () => {
      if (await dialog('Suspend ' + app.id + '?', 'The application is scaled to 0 instances.')) act((f) => api('PUT', forced(appPath(app.id), f), { instances: 0 }), 'Suspending ' + app.id);
    };
    if ($('#act-resume')) $('#act-resume').onclick = async () => {
      const v = await dialog('Resume ' + app.id, 'How many instances?', { label: 'Instances', value: '1' });
      if (v !== null) act((f) => api('PUT', forced(appPath(app.id), f), { instances: parseInt(v, 10) }), 'Resuming ' + app.id);
    };
    $('#act-destroy').onclick = async () => {
      if (!await dialog('Destroy ' + app.id + '?', 'The application and all its tasks are removed. This cannot be undone.')) return;
      try {
        await api('DELETE', appPath(app.id));
        flash('Destroying ' + app.id);
        location.hash = '#/apps?group=' + encodeURIComponent(parentOf(app.id));
      } catch (e) { flash(e.message, true); }
    };
    if (r.tab === 'tasks') wireTasks(app);
    if (r.tab === 'config') wireConfig(app);
    if (r.tab === 'debug') wireDebug(app);
  }
  // act runs an API call. A 409 from a deployment holding the app offers
  // to override it, as Marathon's force=true does.
  async function act(fn, msg) {
    try {
      await fn(false);
    } catch (e) {
      const locked = e.status === 409 && e.data && e.data.deployments && e.data.deployments.length;
      if (!locked) { flash(e.message, true); return; }
      if (!await dialog('Application locked', e.message + ' Override the deployment in progress?')) return;
      try { await fn(true); } catch (e2) { flash(e2.message, true); return; }
    }
    flash(msg);
    scheduleRefresh(0);
  }
  function forced(path, force) { return force ? path + (path.includes('?') ? '&' : '?') + 'force=true' : path; }

  function taskLinks(t) {
    const host = t.host || (t.ipAddresses && t.ipAddresses[0] && t.ipAddresses[0].ipAddress) || '';
    if (!t.ports || !t.ports.length) return esc(host);
    return t.ports.map((p) => '<a href="http://' + esc(host) + ':' + p + '/" target="_blank" rel="noopener">' + esc(host) + ':' + p + '</a>').join('<br>');
  }
  function taskHealth(t, app) {
    const res = t.healthCheckResults || [];
    if (!(app.healthChecks || []).length) return '<span class="muted">no checks</span>';
    if (!res.length) return '<span class="muted">unknown</span>';
    return res.map((c) => {
      const last = c.alive ? 'OK' + (c.lastSuccess ? ' at ' + fmtTime(c.lastSuccess) : '')
        : esc(c.lastFailureCause || 'failed') + (c.lastFailure ? ' at ' + fmtTime(c.lastFailure) : '') + ' (' + c.consecutiveFailures + ' in a row)';
      return '<span class="' + (c.alive ? 'status-Running' : 'status-Unhealthy') + '">' + (c.alive ? 'Healthy' : 'Unhealthy') + '</span> <span class="muted">' + last + '</span>';
    }).join('<br>');
  }
  function tasksTab(app) {
    const tasks = (app.tasks || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    for (const id of Array.from(S.selected)) if (!tasks.some((t) => t.id === id)) S.selected.delete(id);
    let html = '<div class="toolbar"><button class="btn" id="kill" disabled>Kill</button><button class="btn" id="kill-scale" disabled>Kill &amp; Scale</button>' +
      '<span class="muted" id="tasks-count">' + tasks.length + ' task' + (tasks.length === 1 ? '' : 's') + '</span></div>';
    html += '<table id="tasks-table"><thead><tr><th><input type="checkbox" id="sel-all"></th><th>Task</th><th>Host:ports</th><th>Status</th><th>Health</th><th>Started</th><th>Version</th></tr></thead><tbody>';
    for (const t of tasks) {
      html += '<tr class="task-row" data-task="' + esc(t.id) + '" data-state="' + esc(t.state) + '"><td><input type="checkbox" class="sel" value="' + esc(t.id) + '"' + (S.selected.has(t.id) ? ' checked' : '') + '></td>' +
        '<td class="mono">' + esc(t.id) + '</td><td class="nowrap">' + taskLinks(t) + '</td>' +
        '<td class="task-state">' + esc((t.state || '').replace(/^TASK_/, '')) + '</td><td>' + taskHealth(t, app) + '</td>' +
        '<td class="nowrap">' + fmtTime(t.startedAt) + '</td><td class="nowrap">' + fmtTime(t.version) + '</td></tr>';
    }
    if (!tasks.length) html += '<tr><td colspan="7" class="muted">No tasks.</td></tr>';
    return html + '</tbody></table>';
  }
  function wireTasks(app) {
    const update = () => {
      $('#kill').disabled = $('#kill-scale').disabled = S.selected.size === 0;
    };
    for (const cb of $$('input.sel')) cb.onchange = () => { cb.checked ? S.selected.add(cb.value) : S.selected.delete(cb.value); update(); };
    $('#sel-all').onchange = (e) => {
      for (const cb of $$('input.sel')) { cb.checked = e.target.checked; cb.checked ? S.selected.add(cb.value) : S.selected.delete(cb.value); }
      update();
    };
    const kill = (scale) => async () => {
      const ids = Array.from(S.selected);
      if (!await dialog((scale ? 'Kill and scale' : 'Kill') + ' ' + ids.length + ' task(s)?', scale ? 'The application shrinks by as many instances.' : 'The tasks are replaced.')) return;
      S.selected.clear();
      act((f) => api('POST', forced('v2/tasks/delete' + (scale ? '?scale=true' : ''), f), { ids }), 'Killing ' + ids.length + ' task(s)');
    };
    $('#kill').onclick = kill(false);
    $('#kill-scale').onclick = kill(true);
    update();
  }

  function definitionOf(app) {
    const d = Object.assign({}, app);
    for (const k of ['tasks', 'deployments', 'tasksStaged', 'tasksRunning', 'tasksHealthy', 'tasksUnhealthy',
      'lastTaskFailure', 'readinessCheckResults', 'taskStats', 'versionInfo', 'version']) delete d[k];
    return d;
  }
  function configTab(app) {
    let html = '<h2>Current definition <span class="muted">version ' + fmtTime(app.version) + '</span></h2><pre id="config-json">' + esc(JSON.stringify(definitionOf(app), null, 2)) + '</pre>';
    html += '<h2>Version history</h2>';
    if (!S.versions) return html + '<p class="muted">Loading…</p>';
    html += '<table id="versions-table"><thead><tr><th>Version</th><th></th></tr></thead><tbody>';
    S.versions.forEach((v, i) => {
      html += '<tr class="version-row" data-version="' + esc(v) + '"><td class="nowrap">' + fmtTime(v) + (v === app.version ? ' <span class="tag">current</span>' : '') + '</td>' +
        '<td><button class="btn view-version" data-version="' + esc(v) + '">Show</button> ' +
        (v === app.version ? '' : '<button class="btn apply-version" data-version="' + esc(v) + '" data-index="' + i + '">Apply this version</button>') + '</td></tr>';
    });
    html += '</tbody></table>';
    if (S.versionView) html += '<h2>Version ' + fmtTime(S.versionView.version) + '</h2><pre id="version-json">' + esc(JSON.stringify(definitionOf(S.versionView), null, 2)) + '</pre>';
    return html;
  }
  async function loadVersions(id) {
    loadVersions.busy = true;
    try {
      const r = await api('GET', appPath(id) + '/versions');
      S.versions = (r.versions || []).slice().sort().reverse();
      render();
    } catch (e) { flash(e.message, true); } finally { loadVersions.busy = false; }
  }
  function wireConfig(app) {
    for (const b of $$('.view-version')) b.onclick = async () => {
      try { S.versionView = await api('GET', appPath(app.id) + '/versions/' + encodeURIComponent(b.dataset.version)); render(); } catch (e) { flash(e.message, true); }
    };
    for (const b of $$('.apply-version')) b.onclick = async () => {
      const v = b.dataset.version;
      if (!await dialog('Apply version ' + v + '?', 'The application is redeployed with that definition.')) return;
      await act((f) => api('PUT', forced(appPath(app.id), f), { version: v }), 'Applying version ' + v);
      S.versions = null;
      loadVersions(app.id);
    };
  }

  function debugTab(app) {
    let html = '<h2>Last task failure</h2>';
    const f = app.lastTaskFailure;
    if (f) {
      html += '<dl class="kv" id="last-failure"><dt>Task</dt><dd class="mono">' + esc(f.taskId) + '</dd><dt>State</dt><dd>' + esc(f.state) + '</dd>' +
        '<dt>Message</dt><dd id="failure-message">' + esc(f.message) + '</dd><dt>Host</dt><dd>' + esc(f.host) + '</dd>' +
        '<dt>At</dt><dd>' + fmtTime(f.timestamp) + '</dd><dt>Version</dt><dd>' + fmtTime(f.version) + '</dd></dl>';
    } else html += '<p class="muted" id="last-failure">No task of this application failed.</p>';
    html += '<h2>Launch queue</h2>';
    const q = S.queue.get(app.id);
    if (q) {
      const reasons = declined(q);
      html += '<dl class="kv" id="queue-info"><dt>Waiting to launch</dt><dd>' + q.count + ' instance(s) since ' + fmtTime(q.since) + '</dd>' +
        '<dt>Delay</dt><dd id="queue-delay">' + (q.delay && !q.delay.overdue ? q.delay.timeLeftSeconds + ' s left' : 'none (overdue)') + '</dd>' +
        '<dt>Why not placed</dt><dd id="queue-reason">' + (reasons.length ? reasons.map((x) => esc(x.reason) + ' (' + x.declined + ' agents)').join('<br>') : '<span class="muted">no offers declined</span>') + '</dd></dl>' +
        '<p><button class="btn" id="reset-delay">Reset delay</button></p>';
    } else html += '<p class="muted" id="queue-info">Not in the launch queue.</p>';
    return html;
  }
  function wireDebug(app) {
    if ($('#reset-delay')) $('#reset-delay').onclick = () => act(() => api('DELETE', 'v2/queue' + app.id.split('/').map(encodeURIComponent).join('/') + '/delay'), 'Delay reset for ' + app.id);
  }

  // ---- create / edit -------------------------------------------------
  const FORM_FIELDS = [
    { name: 'id', label: 'ID', placeholder: '/group/app', path: /^\/id$/ },
    { name: 'cmd', label: 'Command', placeholder: 'python3 -m http.server $PORT0', path: /^\/(cmd|args)/ },
    { name: 'image', label: 'Docker image', placeholder: 'optional, e.g. nginx:1.27', path: /^\/container/ },
    { name: 'instances', label: 'Instances', value: '1', type: 'number', path: /^\/instances$/ },
    { name: 'cpus', label: 'CPUs', value: '0.1', type: 'number', step: '0.01', path: /^\/cpus$/ },
    { name: 'mem', label: 'Memory (MiB)', value: '32', type: 'number', path: /^\/mem$/ },
    { name: 'ports', label: 'Ports', value: '0', placeholder: 'comma separated; 0 picks one', path: /^\/(portDefinitions|ports)/ },
    { name: 'labels', label: 'Labels', textarea: true, placeholder: 'HAPROXY_GROUP=external\nHAPROXY_0_VHOST=app.example.com', path: /^\/labels/ },
    { name: 'hc', label: 'Health check', select: ['none', 'HTTP', 'TCP', 'COMMAND'], path: /^\/healthChecks/ },
    { name: 'hcPath', label: 'Health check path', value: '/', path: /^\/healthChecks\(\d+\)\/path/ },
  ];
  function formToApp(form) {
    const v = (n) => form.elements[n].value.trim();
    const app = { id: v('id') };
    if (v('cmd')) app.cmd = v('cmd');
    if (v('image')) app.container = { type: 'DOCKER', docker: { image: v('image') } };
    for (const k of ['instances', 'cpus', 'mem']) if (v(k) !== '') app[k] = Number(v(k));
    const ports = v('ports').split(',').map((s) => s.trim()).filter(Boolean);
    if (app.container) app.container.portMappings = ports.map((p) => ({ containerPort: Number(p), hostPort: 0 }));
    else app.portDefinitions = ports.map((p) => ({ port: Number(p) }));
    const labels = {};
    for (const line of v('labels').split('\n')) {
      const i = line.indexOf('=');
      if (line.trim()) labels[(i < 0 ? line : line.slice(0, i)).trim()] = i < 0 ? '' : line.slice(i + 1).trim();
    }
    if (Object.keys(labels).length) app.labels = labels;
    const hc = v('hc');
    if (hc !== 'none') {
      const check = { protocol: hc, gracePeriodSeconds: 30, intervalSeconds: 2, timeoutSeconds: 2, maxConsecutiveFailures: 3 };
      if (hc === 'HTTP') { check.path = v('hcPath') || '/'; check.portIndex = 0; }
      if (hc === 'TCP') check.portIndex = 0;
      if (hc === 'COMMAND') check.command = { value: v('hcPath') || 'true' };
      app.healthChecks = [check];
    }
    return app;
  }
  function renderEditorPage(view, r) {
    const editing = r.name === 'edit';
    let html = '<div id="editor-page">' + (editing ? crumbs(r.id, true) + '<h1>Edit ' + esc(r.id) + '</h1>' : '<h1>Create Application</h1>');
    if (!editing) {
      html += '<div class="tabs"><a href="#" id="mode-form" class="active">Form</a><a href="#" id="mode-json">JSON</a></div>';
      html += '<form id="app-form" class="form-grid" autocomplete="off">';
      for (const f of FORM_FIELDS) {
        let input;
        if (f.textarea) input = '<textarea name="' + f.name + '" id="ff-' + f.name + '" rows="3" placeholder="' + esc(f.placeholder || '') + '"></textarea>';
        else if (f.select) input = '<select name="' + f.name + '" id="ff-' + f.name + '">' + f.select.map((o) => '<option>' + o + '</option>').join('') + '</select>';
        else input = '<input name="' + f.name + '" id="ff-' + f.name + '" type="' + (f.type || 'text') + '"' + (f.step ? ' step="' + f.step + '"' : '') + ' value="' + esc(f.value || '') + '" placeholder="' + esc(f.placeholder || '') + '">';
        html += '<label for="ff-' + f.name + '">' + f.label + '</label>' + input + '<div class="err" id="fe-' + f.name + '"></div>';
      }
      html += '<div></div><div><button type="submit" class="btn primary" id="form-submit">Create</button></div><div class="err" id="fe-other"></div></form>';
    }
    html += '<div id="json-pane"' + (editing ? '' : ' hidden') + '>' +
      '<div class="json-editor" id="json-editor"><div class="gutter" id="json-gutter"></div><textarea id="json-text" spellcheck="false" wrap="off"></textarea><div class="notes" id="json-notes"></div></div>' +
      '<div class="errors-list err" id="json-errors"></div>' +
      '<p><button class="btn primary" id="json-submit">' + (editing ? 'Save' : 'Create') + '</button> ' +
      (editing ? '<a class="btn" href="#/app' + esc(r.id) + '?tab=config">Cancel</a>' : '') + '</p></div></div>';
    view.innerHTML = html;

    const text = $('#json-text');
    text.addEventListener('input', () => paintEditor([]));
    text.addEventListener('scroll', () => { $('#json-gutter').scrollTop = $('#json-notes').scrollTop = text.scrollTop; });
    if (editing) {
      text.value = '';
      $('#json-submit').onclick = () => submitJSON('PUT', appPath(r.id), r.id);
      paintEditor([]);
      return;
    }
    const form = $('#app-form');
    text.value = JSON.stringify({ id: '/my-app', cmd: 'sleep 1000', instances: 1, cpus: 0.1, mem: 32 }, null, 2);
    paintEditor([]);
    $('#mode-json').onclick = (e) => {
      e.preventDefault();
      if (form.elements.id.value.trim()) text.value = JSON.stringify(formToApp(form), null, 2);
      form.hidden = true; $('#json-pane').hidden = false;
      $('#mode-json').className = 'active'; $('#mode-form').className = '';
      paintEditor([]);
    };
    $('#mode-form').onclick = (e) => {
      e.preventDefault();
      form.hidden = false; $('#json-pane').hidden = true;
      $('#mode-form').className = 'active'; $('#mode-json').className = '';
    };
    form.onsubmit = async (e) => {
      e.preventDefault();
      for (const el of $$('.err', form)) el.textContent = '';
      for (const el of $$('.invalid', form)) el.classList.remove('invalid');
      const app = formToApp(form);
      try {
        await api('POST', 'v2/apps', app);
        flash('Created ' + app.id);
        location.hash = '#/app' + (app.id.startsWith('/') ? app.id : '/' + app.id);
      } catch (err) {
        const details = (err.data && err.data.details) || [];
        if (!details.length) { $('#fe-other').textContent = err.message; return; }
        for (const d of details) {
          const f = FORM_FIELDS.slice().reverse().find((x) => x.path.test(d.path));
          const msg = d.path + ': ' + (d.errors || []).join('; ');
          const el = f ? $('#fe-' + f.name) : $('#fe-other');
          el.textContent = (el.textContent ? el.textContent + ' ' : '') + msg;
          if (f) $('#ff-' + f.name).classList.add('invalid');
        }
      }
    };
    $('#json-submit').onclick = () => submitJSON('POST', 'v2/apps', null);
  }
  async function loadEdit(id) {
    try {
      const r = await api('GET', appPath(id));
      const text = $('#json-text');
      if (text && !text.value) { text.value = JSON.stringify(definitionOf(r.app), null, 2); paintEditor([]); }
    } catch (e) { flash(e.message, true); }
  }
  // lineOf finds the line of the field a 422 detail path names, e.g.
  // "/healthChecks(0)/path" or "/container/docker/image": each segment's
  // key is searched for after the line of the one before.
  function lineOf(lines, path) {
    const segs = path.split('/').filter(Boolean).map((s) => s.replace(/\(\d+\)$/, '').replace(/\[\d+\]$/, ''));
    let line = -1, from = 0;
    for (const key of segs) {
      if (/^\d+$/.test(key)) continue;
      const needle = '"' + key + '"';
      let found = -1;
      for (let i = from; i < lines.length; i++) {
        const at = lines[i].indexOf(needle);
        if (at >= 0 && /^\s*:/.test(lines[i].slice(at + needle.length))) { found = i; break; }
      }
      if (found < 0) break;
      line = found;
      from = found + 1;
    }
    return line;
  }
  function paintEditor(details) {
    const text = $('#json-text');
    if (!text) return;
    const lines = text.value.split('\n');
    const notes = new Map();
    const unplaced = [];
    for (const d of details) {
      const msg = (d.errors || []).join('; ');
      const l = lineOf(lines, d.path || '/');
      if (l < 0) unplaced.push(d);
      else notes.set(l, (notes.has(l) ? notes.get(l) + ' · ' : '') + '⚠ ' + (d.path + ': ' + msg));
    }
    let g = '', n = '';
    for (let i = 0; i < lines.length + 30; i++) {
      const note = notes.get(i);
      g += '<div' + (note ? ' class="bad"' : '') + '>' + (i < lines.length ? i + 1 : '') + '</div>';
      n += note ? '<div class="err-line" data-line="' + (i + 1) + '" title="' + esc(note) + '">' + esc(note) + '</div>' : '<div></div>';
    }
    $('#json-gutter').innerHTML = g;
    $('#json-notes').innerHTML = n;
    $('#json-gutter').scrollTop = $('#json-notes').scrollTop = text.scrollTop;
    $('#json-errors').innerHTML = unplaced.map((d) => '<div>' + esc((d.path || '/') + ': ' + (d.errors || []).join('; ')) + '</div>').join('');
  }
  async function submitJSON(method, path, id) {
    const text = $('#json-text');
    $('#json-errors').textContent = '';
    try {
      // Sent as typed: the API judges it, and its answer is shown.
      const res = await api(method, path, text.value);
      let target = id;
      if (!target) {
        target = (res && res.id) || '';
      }
      flash(method === 'POST' ? 'Created ' + target : 'Saved ' + target);
      location.hash = '#/app' + target + (method === 'PUT' ? '?tab=config' : '');
    } catch (err) {
      const details = (err.data && err.data.details) || [];
      paintEditor(details);
      if (!details.length) $('#json-errors').textContent = err.message;
      else $('#json-errors').insertAdjacentHTML('afterbegin', '<div>' + esc(err.message) + '</div>');
    }
  }

  // ---- deployments ---------------------------------------------------
  function renderDeployments(view) {
    let html = '<h1>Deployments</h1>';
    if (!S.deployments.length) { view.innerHTML = html + '<p class="muted" id="no-deployments">No deployments in progress.</p>'; return; }
    html += '<table id="deployments-table"><thead><tr><th>Deployment</th><th>Applications</th><th>Started</th><th>Progress</th><th>Steps</th><th></th></tr></thead><tbody>';
    for (const d of S.deployments) {
      const cur = d.currentStep || 0, total = d.totalSteps || (d.steps || []).length || 1;
      const steps = (d.steps || []).map((s, i) => '<div class="' + (i + 1 < cur ? 'step-done' : i + 1 === cur ? 'step-current' : 'muted') + '">' + (i + 1) + '. ' +
        s.actions.map((a) => esc(a.action) + ' ' + esc(a.app)).join(', ') + '</div>').join('');
      html += '<tr class="deployment-row" data-deployment="' + esc(d.id) + '"><td class="mono">' + esc(d.id) + '</td>' +
        '<td>' + (d.affectedApps || []).map((a) => '<a href="#/app' + esc(a) + '">' + esc(a) + '</a>').join('<br>') + '</td>' +
        '<td class="nowrap">' + fmtTime(d.version) + '</td>' +
        '<td><div class="progress"><span style="width:' + (100 * Math.max(0, cur - 1) / total).toFixed(0) + '%"></span></div>step ' + cur + ' of ' + total + '</td>' +
        '<td>' + steps + '</td>' +
        '<td class="nowrap"><button class="btn rollback" data-id="' + esc(d.id) + '">Rollback</button> <button class="btn danger stop" data-id="' + esc(d.id) + '">Stop</button></td></tr>';
    }
    view.innerHTML = html + '</tbody></table>';
    for (const b of $$('.rollback', view)) b.onclick = async () => {
      if (await dialog('Roll back deployment?', 'A new deployment returns the applications to where they were.')) act(() => api('DELETE', 'v2/deployments/' + encodeURIComponent(b.dataset.id)), 'Rolling back');
    };
    for (const b of $$('.stop', view)) b.onclick = async () => {
      if (await dialog('Stop deployment?', 'The deployment is abandoned where it is; nothing is rolled back.')) act(() => api('DELETE', 'v2/deployments/' + encodeURIComponent(b.dataset.id) + '?force=true'), 'Deployment stopped');
    };
  }

  // ---- agents --------------------------------------------------------
  function renderAgents(view) {
    let html = '<h1>Agents</h1>';
    if (!S.agents) { view.innerHTML = html + '<p class="muted">Loading…</p>'; return; }
    if (!S.agents.length) { view.innerHTML = html + '<p class="muted">No agent registered.</p>'; return; }
    const res = (u, t, unit) => num(u, 2) + ' / ' + num(t, 2) + (unit || '') + ' <span class="muted">(' + num(Math.max(0, t - u), 2) + ' free)</span>';
    html += '<table id="agents-table"><thead><tr><th>Agent</th><th>Address</th><th>Reachable</th><th>Attributes</th><th>CPU used / total</th><th>Memory used / total</th><th>Disk used / total</th><th>Ports</th><th>Tasks</th></tr></thead><tbody>';
    for (const a of S.agents) {
      html += '<tr class="agent-row" data-agent="' + esc(a.id) + '"><td>' + esc(a.hostname) + '<div class="muted mono">' + esc(a.id) + '</div></td><td>' + esc(a.address) + '</td>' +
        '<td class="' + (a.reachable ? 'status-Running' : 'status-Unhealthy') + '">' + (a.reachable ? 'yes' : 'no') + '</td>' +
        '<td>' + Object.entries(a.attributes || {}).map(([k, v]) => '<span class="tag">' + esc(k) + ':' + esc(v) + '</span>').join('') + '</td>' +
        '<td class="nowrap">' + res(a.used.cpus, a.resources.cpus) + '</td><td class="nowrap">' + res(a.used.mem, a.resources.mem, ' MiB') + '</td>' +
        '<td class="nowrap">' + res(a.used.disk, a.resources.disk, ' MiB') + '</td>' +
        '<td>' + (a.ports || []).map((p) => p.begin + '-' + p.end).join(', ') + '</td>' +
        '<td>' + (a.tasks || []).map((t) => '<div><a href="#/app' + esc(t.appId) + '">' + esc(t.appId) + '</a> <span class="muted mono">' + esc(t.id) + ' ' + esc((t.state || '').replace(/^TASK_/, '')) + '</span></div>').join('') + '</td></tr>';
    }
    view.innerHTML = html + '</tbody></table>';
  }

  S.render = render; // for tests: render the current view from state now
  window.addEventListener('hashchange', onRoute);
  onRoute();
  connectEvents();
})();
