// Golden images: a paged list with search, create, and one image's page with its versions
// (state, file, replicas on the servers, the published one marked), a version added by
// uploading a qcow2 file (with progress) or by registering a file already in the image store,
// publish, and delete. Also the small pieces the specs and pools pages share.
import * as api from '/common/api.js';
import { ApiError } from '/common/api.js';
import { h, icon, clear, field, dialog, confirmDialog, toast, button, alertBox, busy, setText, errorText } from '/common/ui.js';
import { formatNumber, lang, t } from '/common/i18n.js';
import { pageHead, dataTable, Pager, searchBox, latest, loadPage } from './lists.js';
import { Poller, liveBadge, ago } from './inventory.js';

const PAGE_SIZE = 20;
const LIVE_MS = 3000;
const IDLE_MS = 15000;
export const OS_TYPES = ['linux', 'windows', 'other'];

// ---- shared by the catalog and pool pages ----------------------------------------------------

/*
 * alert.showError overrides that keep the API's own message for answers the generic text
 * would hide ("used by pool sales", "only a ready version can be published").
 */
export const SHOW_MESSAGE = {
  conflict: (e) => ({ key: 'catalog.error.conflict', args: { detail: e.message } }),
  not_found: (e) => ({ key: 'catalog.error.not_found', args: { detail: e.message } }),
  payload_too_large: () => ({ key: 'catalog.error.too_large' }),
};

// The keyset cursor of a list answer, whichever name the endpoint gives it.
export function nextCursor(data) {
  if (!data) return null;
  if (data.next_after !== undefined) return data.next_after;
  if (data.next !== undefined) return data.next;
  return null;
}

// Every item of a keyset-paged list (up to `pages` pages of `limit`).
export async function loadAll(path, params = {}, limit = 200, pages = 10) {
  const out = [];
  let after = null;
  for (let i = 0; i < pages; i++) {
    const data = await api.get(path, { ...params, limit, after });
    out.push(...(data.items || []));
    after = nextCursor(data);
    if (after === null) break;
  }
  return out;
}

function fixed(n, digits) {
  return new Intl.NumberFormat(lang() === 'ko' ? 'ko-KR' : 'en-US', { maximumFractionDigits: digits }).format(n);
}

export function fmtBytes(bytes) {
  const v = Number(bytes) || 0;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return fixed(x, i === 0 ? 0 : 1) + ' ' + units[i];
}

export function osBadge(os) {
  const known = OS_TYPES.includes(os);
  return h('span', { class: ['badge', 'badge-os', 'badge-os-' + (known ? os : 'other')], 'data-os': os, i18n: known ? 'os.' + os : undefined, text: known ? undefined : os });
}

export function cardHead(key, iconName, extra, count) {
  return h('header', { class: 'card-head' },
    h('h2', { class: 'card-title' }, icon(iconName), h('span', { i18n: key }), count || null), extra || null);
}

// "Images / win11" above a detail page.
export function crumbs(listHref, listKey, name) {
  return h('nav', { class: 'crumbs', i18nLabel: 'crumbs.label', 'data-role': 'crumbs' },
    h('a', { href: listHref, i18n: listKey }), h('span', { class: 'crumb-sep', 'aria-hidden': 'true', text: '/' }),
    h('span', { 'aria-current': 'page', text: name }));
}

export function notFoundCard(page, titleKey, textKey, backHref, backKey, iconName) {
  clear(page).append(h('div', { class: 'card notice-card notice-inline', 'data-role': 'missing' },
    h('span', { class: 'empty-icon' }, icon(iconName)),
    h('h1', { class: 'notice-title', i18n: titleKey }),
    h('p', { class: 'notice-text', i18n: textKey }),
    h('div', { class: 'notice-actions' }, h('a', { class: 'btn btn-primary', href: backHref }, h('span', { i18n: backKey })))));
}

// A whole number from an input, or NaN.
export function intOf(input) {
  const s = String(input.value).trim();
  return /^\d+$/.test(s) ? Number(s) : NaN;
}

// ---- routes ---------------------------------------------------------------------------------

export function imagesRoute(page, ctx, rest) {
  const id = /^\d+$/.test(rest || '') ? Number(rest) : null;
  if (id) return imagePage(page, id);
  return imagesList(page);
}

// ---- the list -------------------------------------------------------------------------------

function imagesList(page) {
  let q = '';
  const table = dataTable([
    { key: 'images.col.name', class: 'col-name', noLabel: true },
    { key: 'images.col.os', class: 'col-os' },
    { key: 'images.col.published', class: 'col-published' },
    { key: 'images.col.versions', class: 'col-num' },
    { key: 'images.col.updated', class: 'col-date' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'images');
  const pager = new Pager(PAGE_SIZE, () => load());
  const only = latest();
  const search = searchBox('images.search', (v) => {
    q = v;
    pager.reset();
    load();
  });

  page.append(
    pageHead('images.title', 'images.subtitle',
      button('images.new', { variant: 'primary', icon: 'plus', action: 'new-image', onclick: () => imageDialog(null, (img) => {
        window.location.hash = '#/images/' + img.id;
      }) })),
    h('section', { class: 'card list-card' },
      h('div', { class: 'toolbar' }, search.el),
      table.el,
      pager.el));

  function load() {
    return loadPage({
      table, pager, only,
      fetch: async () => {
        const d = await api.get('/images', { ...pager.params(), q });
        return { ...d, next_after: nextCursor(d) };
      },
      row: imageRow,
      emptyKey: q ? 'images.none_match' : 'images.empty',
      emptyIcon: 'layers',
      infoKey: 'list.page',
    });
  }

  function imageRow(img) {
    return table.row([
      h('div', { class: 'image-cell' },
        h('span', { class: 'image-icon', 'aria-hidden': 'true' }, icon('layers')),
        h('div', { class: 'user-cell-text' },
          h('a', { class: 'user-cell-name image-link', href: '#/images/' + img.id, text: img.name }),
          img.description ? h('span', { class: 'user-cell-sub', text: img.description }) : null)),
      osBadge(img.os_type),
      publishedCell(img),
      h('span', { class: 'num', 'data-role': 'versions', text: formatNumber(img.versions || 0) }),
      ago(img.updated_at),
      h('div', { class: 'row-actions' },
        h('a', { class: 'icon-btn', href: '#/images/' + img.id, 'data-action': 'open', i18nLabel: 'images.open', i18nTitle: 'images.open' }, icon('chevronRight'))),
    ], { 'data-image': img.name, 'data-image-id': String(img.id) });
  }

  load();
}

function publishedCell(img) {
  if (img.published_version === null || img.published_version === undefined) {
    return h('span', { class: 'badge badge-neutral', 'data-role': 'published', i18n: 'images.unpublished' });
  }
  return h('span', { class: 'badge badge-success', 'data-role': 'published' }, icon('check'),
    h('span', { i18n: 'images.version_n', i18nArgs: { n: img.published_version } }));
}

// Create (img null) or edit an image; done(image) after the API answered.
export function imageDialog(img, done) {
  const name = h('input', { type: 'text', name: 'name', maxlength: '64', autocomplete: 'off', required: true, value: img ? img.name : '' });
  const desc = h('input', { type: 'text', name: 'description', maxlength: '255', autocomplete: 'off', value: img ? img.description || '' : '' });
  const os = h('select', { name: 'os_type' }, OS_TYPES.map((o) => h('option', { value: o, i18n: 'os.' + o })));
  os.value = img ? img.os_type : 'linux';
  dialog({
    name: img ? 'edit-image' : 'create-image',
    title: img ? 'images.edit.title' : 'images.create.title',
    titleArgs: img ? { name: img.name } : undefined,
    intro: img ? undefined : 'images.create.intro',
    submitKey: img ? 'common.save' : 'images.create.submit',
    errors: { ...SHOW_MESSAGE, conflict: 'images.error.exists' },
    body: [
      field('images.field.name', name, { hint: 'images.field.name_hint' }),
      field('images.field.os', os),
      field('images.field.description', desc, { optional: true }),
    ],
    onSubmit: async (form, alert) => {
      const n = name.value.trim();
      if (!n) {
        alert.show('images.error.name');
        name.focus();
        return false;
      }
      const body = { name: n, description: desc.value.trim(), os_type: os.value };
      const out = img ? await api.patch('/images/' + img.id, body) : await api.post('/images', body);
      toast(img ? 'images.saved' : 'images.created', { name: n });
      if (done) done(out);
      return true;
    },
  });
}

// ---- one image ------------------------------------------------------------------------------

const VERSION_STATE = { capturing: 'badge-info', ready: 'badge-success', failed: 'badge-danger' };

export function versionStateBadge(state) {
  const known = state in VERSION_STATE;
  return h('span', {
    class: ['badge', known ? VERSION_STATE[state] : 'badge-neutral', state === 'capturing' ? 'badge-live' : 'badge-dot'],
    'data-version-state': state, i18n: known ? 'version.state.' + state : undefined, text: known ? undefined : state,
  });
}

function imagePage(page, id) {
  const alert = alertBox();
  const live = liveBadge();
  const crumbBox = h('div');
  const head = h('div', { class: 'page-head image-head' });
  const versionsTable = dataTable([
    { key: 'versions.col.version', class: 'col-name', noLabel: true },
    { key: 'versions.col.state', class: 'col-state' },
    { key: 'versions.col.file', class: 'col-file' },
    { key: 'versions.col.replicas', class: 'col-replicas' },
    { key: 'versions.col.created', class: 'col-date' },
    { key: 'list.actions', class: 'col-actions', noLabel: true },
  ], 'versions');
  const versionCount = h('span', { class: 'card-count', 'data-role': 'version-count' });
  let image = null;
  let versions = [];
  let working = false;

  const upload = uploadPanel();
  const register = registerPanel();

  page.append(crumbBox, head, alert.el,
    h('section', { class: 'card detail-card versions-card', 'data-card': 'versions' },
      cardHead('versions.title', 'layers', null, versionCount),
      versionsTable.el),
    h('section', { class: 'card detail-card add-version', 'data-card': 'add-version' },
      cardHead('versions.add.title', 'plus'),
      h('div', { class: 'add-version-grid' }, upload.el, register.el)));

  const poller = new Poller(page, refresh, () => (working ? LIVE_MS : IDLE_MS));
  poller.now();
  // an upload in flight goes on when the page is left; a toast tells how it ended
  return () => poller.stop();

  async function refresh() {
    try {
      const [img, vs] = await Promise.all([api.get('/images/' + id), api.get(`/images/${id}/versions`)]);
      image = img;
      versions = vs.items || [];
      working = versions.some((v) => v.state === 'capturing' || (v.replicas && v.replicas.fetching > 0));
      renderHead();
      renderVersions();
      alert.hide();
      live.mark();
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        poller.stop();
        notFoundCard(page, 'image.missing.title', 'image.missing.text', '#/images', 'image.back', 'layers');
        return;
      }
      alert.showError(e, SHOW_MESSAGE);
      live.stale();
    }
  }

  function renderHead() {
    clear(crumbBox).append(crumbs('#/images', 'nav.images', image.name));
    const focused = document.activeElement && head.contains(document.activeElement) ? document.activeElement.getAttribute('data-action') : null;
    clear(head).append(
      h('div', { class: 'server-title' },
        h('span', { class: 'server-title-icon image-icon image-icon-lg' }, icon('layers')),
        h('div', { class: 'title-text' },
          h('h1', { class: 'page-title', 'data-role': 'image-name', text: image.name }),
          h('p', { class: 'page-subtitle' },
            osBadge(image.os_type), publishedCell(image),
            image.description ? h('span', { class: 'muted', text: image.description }) : null))),
      h('div', { class: 'page-actions' }, live.el,
        button('images.edit', { icon: 'edit', action: 'edit-image', onclick: () => imageDialog(image, () => poller.now()) }),
        button('images.delete', { icon: 'trash', variant: 'danger-ghost', action: 'delete-image', onclick: () => deleteImage() })));
    if (focused) {
      const again = head.querySelector(`[data-action="${focused}"]`);
      if (again) again.focus();
    }
  }

  function renderVersions() {
    versionCount.textContent = formatNumber(versions.length);
    versionsTable.sync(versions, (v) => v.id,
      (v) => JSON.stringify([v.state, v.published, v.replicas, v.error, v.size_bytes, Math.floor(Date.now() / 30000)]),
      versionRow);
    if (!versions.length) versionsTable.empty('versions.empty', 'layers');
  }

  function replicasCell(v) {
    const r = v.replicas || { ready: 0, fetching: 0, failed: 0 };
    const parts = [];
    if (r.ready) parts.push(h('span', { class: 'chip chip-ok', 'data-replicas': 'ready' }, h('span', { class: 'chip-dot' }), h('span', { i18n: 'replicas.ready', i18nArgs: { n: formatNumber(r.ready) } })));
    if (r.fetching) parts.push(h('span', { class: 'chip chip-maint', 'data-replicas': 'fetching' }, h('span', { class: 'chip-dot' }), h('span', { i18n: 'replicas.fetching', i18nArgs: { n: formatNumber(r.fetching) } })));
    if (r.failed) parts.push(h('span', { class: 'chip chip-bad', 'data-replicas': 'failed' }, h('span', { class: 'chip-dot' }), h('span', { i18n: 'replicas.failed', i18nArgs: { n: formatNumber(r.failed) } })));
    if (!parts.length) return h('span', { class: 'muted', 'data-replicas': 'none', i18n: 'replicas.none' });
    return h('button', { type: 'button', class: 'replica-chips', 'data-action': 'replicas', i18nTitle: 'replicas.show', onclick: () => replicasDialog(v) }, parts);
  }

  function versionRow(v) {
    const canPublish = v.state === 'ready' && !v.published;
    const publishBtn = canPublish
      ? h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'publish', onclick: () => publish(v) }, icon('check'), h('span', { i18n: 'versions.publish' }))
      : null;
    const delBtn = h('button', {
      type: 'button', class: 'icon-btn icon-btn-danger', 'data-action': 'delete-version',
      i18nLabel: v.published ? 'versions.delete_published' : 'versions.delete', i18nTitle: v.published ? 'versions.delete_published' : 'versions.delete',
      disabled: v.published, onclick: () => deleteVersion(v),
    }, icon('trash'));
    return versionsTable.row([
      h('div', { class: 'version-cell' },
        h('span', { class: ['version-num', v.published ? 'is-published' : null], text: 'v' + v.version }),
        h('div', { class: 'user-cell-text' },
          h('span', { class: 'user-cell-name' },
            h('span', { i18n: 'images.version_n', i18nArgs: { n: v.version } }),
            v.published ? h('span', { class: 'badge badge-success badge-published', 'data-role': 'published-badge' }, icon('check'), h('span', { i18n: 'versions.published' })) : null),
          v.notes ? h('span', { class: 'user-cell-sub', text: v.notes }) : null)),
      h('div', { class: 'state-cell' }, versionStateBadge(v.state),
        v.error ? h('span', { class: 'task-error-text is-failed', 'data-role': 'version-error', text: v.error }) : null),
      h('div', { class: 'user-cell-text file-cell' },
        h('span', { class: 'nowrap' }, h('span', { i18n: 'version.source.' + v.source }), v.size_bytes ? h('span', { class: 'muted', text: ' · ' + fmtBytes(v.size_bytes) }) : null),
        v.sha256 ? h('span', { class: 'mono muted sha', title: v.sha256, 'data-role': 'sha256', text: v.sha256.slice(0, 12) }) : h('span', { class: 'muted', text: '—' })),
      replicasCell(v),
      h('div', { class: 'user-cell-text' }, ago(v.created_at), v.created_by ? h('span', { class: 'user-cell-sub', text: v.created_by }) : null),
      h('div', { class: 'row-actions' }, publishBtn, delBtn),
    ], { 'data-version': String(v.version), 'data-version-id': String(v.id), 'data-state': v.state, 'data-published': String(!!v.published) });
  }

  async function publish(v) {
    const ok = await confirmDialog({
      title: 'versions.publish.title', titleArgs: { n: v.version, name: image.name },
      text: 'versions.publish.text', textArgs: { n: v.version, name: image.name },
      confirmKey: 'versions.publish', errors: SHOW_MESSAGE,
      action: () => api.post(`/image-versions/${v.id}/publish`),
    });
    if (!ok) return;
    toast('versions.published_done', { n: v.version, name: image.name });
    poller.now();
  }

  async function deleteVersion(v) {
    const ok = await confirmDialog({
      title: 'versions.delete.title', titleArgs: { n: v.version, name: image.name },
      text: 'versions.delete.text', confirmKey: 'versions.delete', danger: true, errors: SHOW_MESSAGE,
      action: () => api.del('/image-versions/' + v.id),
    });
    if (!ok) return;
    toast('versions.deleted', { n: v.version, name: image.name });
    poller.now();
  }

  async function deleteImage() {
    const ok = await confirmDialog({
      title: 'images.delete.title', titleArgs: { name: image.name },
      text: 'images.delete.text', confirmKey: 'images.delete', danger: true, errors: SHOW_MESSAGE,
      action: () => api.del('/images/' + id),
    });
    if (!ok) return;
    toast('images.deleted', { name: image.name });
    window.location.hash = '#/images';
  }

  function replicasDialog(v) {
    const list = h('ul', { class: 'replica-list', 'data-role': 'replica-list' }, h('li', { class: 'task-empty', i18n: 'list.loading' }));
    const d = dialog({ name: 'replicas', wide: true, title: 'replicas.title', titleArgs: { n: v.version, name: image.name }, body: [list] });
    api.get('/image-versions/' + v.id).then((full) => {
      const rows = full.replicas_detail || [];
      clear(list).append(...rows.map((r) => h('li', { class: 'replica', 'data-server-id': String(r.server_id), 'data-replica-state': r.state },
        h('span', { class: 'topo-icon topo-icon-server' }, icon('server')),
        h('div', { class: 'user-cell-text' },
          h('a', { class: 'user-cell-name', href: '#/servers/' + r.server_id, onclick: () => d.close(), text: r.hostname || '#' + r.server_id }),
          h('span', { class: 'user-cell-sub' }, r.verified ? h('span', { i18n: 'replicas.verified.' + (r.verified === 'content' ? 'content' : 'download') }) : null,
            r.verified ? ' · ' : null, ago(r.updated_at)),
          r.error ? h('span', { class: 'task-error-text is-failed', text: r.error }) : null),
        h('span', { class: ['badge', 'badge-dot', r.state === 'ready' ? 'badge-success' : r.state === 'failed' ? 'badge-danger' : 'badge-warning'], i18n: 'replica.state.' + r.state }))));
      if (!rows.length) list.append(h('li', { class: 'task-empty', i18n: 'replicas.none' }));
    }).catch((e) => d.alert.showError(e, SHOW_MESSAGE));
  }

  // ---- adding a version ----

  function added(v, how) {
    toast(how, { n: v.version, name: image ? image.name : '' });
    poller.now();
  }

  function uploadPanel() {
    const palert = alertBox();
    const file = h('input', { type: 'file', name: 'file', accept: '.qcow2,.img,application/octet-stream', 'data-role': 'upload-file' });
    const notes = h('input', { type: 'text', name: 'upload-notes', maxlength: '255', autocomplete: 'off' });
    const submit = button('versions.upload.submit', { variant: 'primary', icon: 'plus', action: 'upload' });
    const cancel = button('versions.upload.cancel', { variant: 'ghost', action: 'cancel-upload' });
    cancel.hidden = true;
    const bar = h('progress', { class: 'upload-progress', max: '100', value: '0', i18nLabel: 'versions.upload.progress' });
    const text = h('span', { class: 'upload-text', 'data-role': 'upload-text' });
    const prog = h('div', { class: 'upload', 'data-role': 'upload-progress', hidden: true }, bar, text);
    let xhr = null;

    submit.addEventListener('click', async () => {
      palert.hide();
      const f = file.files && file.files[0];
      if (!f) {
        palert.show('versions.upload.pick');
        file.focus();
        return;
      }
      const done = busy(submit, 'versions.upload.busy');
      // leaving the page would end the upload: the browser asks first
      const stay = (ev) => {
        ev.preventDefault();
        ev.returnValue = '';
      };
      window.addEventListener('beforeunload', stay);
      file.disabled = true;
      notes.disabled = true;
      cancel.hidden = false;
      prog.hidden = false;
      bar.value = 0;
      setText(text, 'versions.upload.bytes', { done: fmtBytes(0), total: fmtBytes(f.size), pct: 0 });
      try {
        const v = await uploadVersion(id, f, notes.value.trim(), (loaded, total) => {
          const p = total ? Math.min(100, Math.floor((loaded / total) * 100)) : 0;
          bar.value = p;
          setText(text, loaded >= total ? 'versions.upload.checking' : 'versions.upload.bytes', { done: fmtBytes(loaded), total: fmtBytes(total), pct: p });
        }, (x) => {
          xhr = x;
        });
        file.value = '';
        notes.value = '';
        prog.hidden = true;
        added(v, 'versions.uploaded');
      } catch (e) {
        prog.hidden = true;
        if (e && e.name === 'AbortError') {
          palert.show('versions.upload.cancelled', null, 'info');
        } else if (!palert.el.isConnected) {
          const m = errorText(e, SHOW_MESSAGE);
          toast('versions.upload.failed', { name: f.name, detail: t(m.key, m.args) }, 'error');
        } else {
          palert.showError(e, SHOW_MESSAGE);
        }
      } finally {
        window.removeEventListener('beforeunload', stay);
        xhr = null;
        cancel.hidden = true;
        file.disabled = false;
        notes.disabled = false;
        done();
      }
    });
    cancel.addEventListener('click', () => {
      if (xhr) xhr.abort();
    });

    return {
      el: h('div', { class: 'add-panel', 'data-role': 'upload-panel' },
        h('h3', { class: 'section-title' }, icon('arrowRight', 'rot-up'), h('span', { i18n: 'versions.upload.title' })),
        h('p', { class: 'field-hint add-hint', i18n: 'versions.upload.hint' }),
        palert.el,
        field('versions.field.file', file),
        field('versions.field.notes', notes, { optional: true }),
        prog,
        h('div', { class: 'add-actions' }, cancel, submit)),
    };
  }

  function registerPanel() {
    const palert = alertBox();
    const path = h('input', { type: 'text', name: 'path', maxlength: '1024', autocomplete: 'off', spellcheck: 'false', class: 'mono-input', placeholder: 'win11/base-2025-01.qcow2' });
    const notes = h('input', { type: 'text', name: 'register-notes', maxlength: '255', autocomplete: 'off' });
    const submit = button('versions.register.submit', { variant: 'secondary', icon: 'plus', action: 'register' });
    submit.addEventListener('click', async () => {
      palert.hide();
      const p = path.value.trim();
      if (!p) {
        palert.show('versions.register.pick');
        path.focus();
        return;
      }
      const done = busy(submit, 'versions.register.busy');
      try {
        const v = await api.post(`/images/${id}/versions`, { path: p, notes: notes.value.trim() });
        path.value = '';
        notes.value = '';
        added(v, 'versions.registered');
      } catch (e) {
        palert.showError(e, SHOW_MESSAGE);
      } finally {
        done();
      }
    });
    path.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        submit.click();
      }
    });
    return {
      el: h('div', { class: 'add-panel', 'data-role': 'register-panel' },
        h('h3', { class: 'section-title' }, icon('box'), h('span', { i18n: 'versions.register.title' })),
        h('p', { class: 'field-hint add-hint', i18n: 'versions.register.hint' }),
        palert.el,
        field('versions.field.path', path),
        field('versions.field.notes', notes, { optional: true }),
        h('div', { class: 'add-actions' }, submit)),
    };
  }
}

// ---- the upload itself ------------------------------------------------------------------------

// The session's CSRF token: api.js keeps its copy to itself, /auth/me hands it out too.
async function csrfToken() {
  try {
    return (await api.get('/auth/me')).csrf_token;
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) throw e;
  }
  if (!(await api.refresh())) throw new ApiError(401, 'unauthenticated', 'sign in again');
  return (await api.get('/auth/me')).csrf_token;
}

function putFile(url, file, csrf, onProgress, onXhr) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('X-CSRF-Token', csrf);
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch (e) {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(data);
        return;
      }
      const err = (data && data.error) || {};
      const code = err.code || (xhr.status >= 500 ? 'unavailable' : 'http_' + xhr.status);
      reject(new ApiError(xhr.status, code, err.message || xhr.statusText, err.request_id, null));
    };
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload was interrupted'));
    xhr.onabort = () => {
      const e = new Error('aborted');
      e.name = 'AbortError';
      reject(e);
    };
    onXhr(xhr);
    xhr.send(file);
  });
}

/*
 * PUTs a qcow2 file as the raw body of /images/{id}/upload; onProgress(loaded, total) while
 * it goes, onXhr(xhr) so the caller can abort. Resolves with the new Version; an expired
 * session is refreshed once and the file sent again.
 */
export async function uploadVersion(id, file, notes, onProgress, onXhr) {
  const url = `/api/v1/images/${id}/upload` + (notes ? '?notes=' + encodeURIComponent(notes) : '');
  try {
    return await putFile(url, file, await csrfToken(), onProgress, onXhr);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401 && e.code !== 'bad_credentials')) throw e;
    if (!(await api.refresh())) throw e;
    return putFile(url, file, await csrfToken(), onProgress, onXhr);
  }
}
