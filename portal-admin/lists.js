// Building blocks of the admin pages: page heads, tables that turn into cards on phones,
// keyset pagers and debounced search boxes.

import { h, icon, clear, setText, alertBox } from '/common/ui.js';
import { formatNumber } from '/common/i18n.js';

export function pageHead(titleKey, subtitleKey, ...actions) {
  return h('div', { class: 'page-head' },
    h('div', null,
      h('h1', { class: 'page-title', i18n: titleKey }),
      subtitleKey ? h('p', { class: 'page-subtitle', i18n: subtitleKey }) : null),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null);
}

// table([{key: 'users.col.user', class}], 'users') -> {el, body, setRows(rows), setState(...)}
export function dataTable(columns, name) {
  const headRow = h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class, i18n: c.key })));
  const body = h('tbody');
  const table = h('table', { class: 'data-table', 'data-table': name }, h('thead', null, headRow), body);
  const status = h('div', { class: 'table-status', hidden: true });
  const alert = alertBox();
  const wrap = h('div', { class: 'table-wrap' }, table);
  const el = h('div', { class: 'table-block' }, alert.el, wrap, status);
  return {
    el,
    body,
    alert,
    row(cells, attrs) {
      return h('tr', attrs || null, cells.map((c, i) => {
        const col = columns[i];
        // phones show rows as cards: each cell then carries its column's title
        const label = col.key && !col.noLabel ? h('span', { class: 'cell-label', 'aria-hidden': 'true', i18n: col.key }) : null;
        return h('td', { class: col.class }, label, h('div', { class: 'cell-value' }, c));
      }));
    },
    setRows(rows) {
      clear(body).append(...rows);
      table.classList.toggle('is-loading', false);
      table.classList.toggle('is-empty', rows.length === 0);
      status.hidden = true;
    },
    /*
     * Live lists: puts items in order, keeping the row of an item whose signature did not
     * change (so a refresh does not take the focus away or flash), rebuilding the others.
     * key(item) names the item, sig(item) is a string that changes when its row must, and
     * render(item) makes the <tr>.
     */
    sync(items, key, sig, render) {
      const old = new Map();
      for (const tr of Array.from(body.children)) if (tr.bicKey !== undefined) old.set(tr.bicKey, tr);
      const rows = items.map((it) => {
        const k = key(it);
        const s = sig(it);
        let tr = old.get(k);
        if (!tr || tr.bicSig !== s) {
          const fresh = render(it);
          fresh.bicKey = k;
          fresh.bicSig = s;
          if (tr) tr.replaceWith(fresh);
          tr = fresh;
        }
        old.delete(k);
        return tr;
      });
      for (const tr of old.values()) tr.remove();
      for (const tr of Array.from(body.children)) if (tr.bicKey === undefined) tr.remove();
      rows.forEach((tr, i) => {
        if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
      });
      table.classList.toggle('is-loading', false);
      table.classList.toggle('is-empty', rows.length === 0);
      status.hidden = true;
    },
    loading() {
      table.classList.add('is-loading');
      el.setAttribute('aria-busy', 'true');
    },
    done() {
      table.classList.remove('is-loading');
      el.removeAttribute('aria-busy');
    },
    empty(key, iconName) {
      clear(body);
      table.classList.add('is-empty');
      clear(status).append(h('div', { class: 'empty empty-sm' },
        h('span', { class: 'empty-icon' }, icon(iconName || 'search')),
        h('p', { class: 'empty-text', i18n: key })));
      status.hidden = false;
    },
  };
}

// Keyset paging: remembers the cursor of every page seen so "previous" works too.
export class Pager {
  constructor(limit, onChange, cursorName) {
    this.limit = limit;
    this.onChange = onChange;
    this.cursorName = cursorName || 'after';
    this.reset();
    this.prevBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'prev-page', i18nLabel: 'list.prev', i18nTitle: 'list.prev', onclick: () => this.prev() }, icon('chevronLeft'));
    this.nextBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-action': 'next-page', i18nLabel: 'list.next', i18nTitle: 'list.next', onclick: () => this.next() }, icon('chevronRight'));
    this.info = h('span', { class: 'pager-info', 'data-role': 'pager-info' });
    this.el = h('div', { class: 'pager' }, this.info, h('div', { class: 'pager-buttons' }, this.prevBtn, this.nextBtn));
  }

  reset() {
    this.cursors = [null];
    this.index = 0;
    this.nextCursor = null;
  }

  cursor() {
    return this.cursors[this.index];
  }

  params() {
    const p = { limit: this.limit };
    if (this.cursor() !== null) p[this.cursorName] = this.cursor();
    return p;
  }

  // After a page has loaded: count of items on it, the next cursor and the total if known.
  update(count, nextCursor, total, infoKey) {
    this.nextCursor = nextCursor === undefined ? null : nextCursor;
    this.prevBtn.disabled = this.index === 0;
    this.nextBtn.disabled = this.nextCursor === null;
    if (total !== undefined && total !== null) {
      const from = count ? this.index * this.limit + 1 : 0;
      setText(this.info, 'list.range', { from: formatNumber(from), to: formatNumber(this.index * this.limit + count), total: formatNumber(total) });
    } else {
      setText(this.info, infoKey || 'audit.page', { n: this.index + 1 });
    }
    this.el.hidden = total === 0 || (count === 0 && this.index === 0);
  }

  next() {
    if (this.nextCursor === null) return;
    this.cursors = this.cursors.slice(0, this.index + 1);
    this.cursors.push(this.nextCursor);
    this.index++;
    this.onChange();
  }

  prev() {
    if (this.index === 0) return;
    this.index--;
    this.onChange();
  }
}

// A search box that calls onSearch(text) 300 ms after the last key press.
export function searchBox(placeholderKey, onSearch, name) {
  const input = h('input', { type: 'search', name: name || 'q', i18nPlaceholder: placeholderKey, i18nLabel: placeholderKey, autocomplete: 'off', spellcheck: 'false' });
  let timer = null;
  let last = '';
  const fire = () => {
    const v = input.value.trim();
    if (v === last) return;
    last = v;
    onSearch(v);
  };
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(fire, 300);
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      clearTimeout(timer);
      fire();
    }
  });
  return { el: h('div', { class: 'input-search' }, icon('search'), input), input };
}

export function select(name, options, labelKey) {
  return h('select', { name, i18nLabel: labelKey, i18nTitle: labelKey },
    options.map(([value, key]) => h('option', { value, i18n: key })));
}

// Runs loader() so that only the newest call's answer is shown.
export function latest() {
  let seq = 0;
  return async (fn) => {
    const mine = ++seq;
    const out = await fn();
    return mine === seq ? { current: true, value: out } : { current: false };
  };
}

/*
 * Loads one page of a keyset-paged list into table. fetch() returns the API's
 * {items, next_after, total}; only is a latest() guard, so an answer that a newer
 * request overtook is dropped. emptyKey/emptyIcon describe an empty result.
 */
export async function loadPage({ table, pager, only, fetch, row, emptyKey, emptyIcon, quiet, keyed, nextKey, infoKey }) {
  if (!quiet) {
    table.loading();
    table.alert.hide();
  }
  let res;
  try {
    res = await only(fetch);
  } catch (e) {
    table.done();
    table.alert.showError(e);
    return null;
  }
  if (!res.current) return null;
  table.done();
  table.alert.hide();
  const data = res.value;
  const items = data.items || [];
  if (!items.length && pager.index > 0) {
    // the last page emptied (e.g. after a change): step back
    pager.prev();
    return null;
  }
  // keyed: {key, sig} for live lists that refresh in place (see sync)
  if (keyed) table.sync(items, keyed.key, keyed.sig, row);
  else table.setRows(items.map(row));
  if (!items.length) table.empty(emptyKey, emptyIcon);
  pager.update(items.length, data[nextKey || 'next_after'], data.total, infoKey);
  // a list without a total that fits on one page needs no pager
  if (data.total === undefined && pager.index === 0 && pager.nextCursor === null) pager.el.hidden = true;
  return data;
}
