// Two-step verification (TOTP) in both portals: the pieces the sign-in screens use (the QR
// code with its key, the recovery codes) and the Account security dialog, where a signed-in
// person sets up, turns off, or renews the recovery codes of the second factor.
import * as api from './api.js';
import { t, formatDate } from './i18n.js';
import { h, icon, clear, alertBox, field, busy, button, dialog, toast, setText } from './ui.js';

const CODE_RE = /^\s*\d{3}[\s-]?\d{3}\s*$/;

// "ABCDEFGH..." -> "ABCD EFGH ..." (the key as people copy it by hand).
function grouped(s) {
  return String(s).replace(/(.{4})(?=.)/g, '$1 ');
}

function copyButton(text, action) {
  const btn = button('mfa.copy', { icon: 'copy', variant: 'ghost', class: 'btn-sm', action });
  btn.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      setText(btn.querySelector('[data-i18n]'), 'mfa.copied');
      setTimeout(() => setText(btn.querySelector('[data-i18n]'), 'mfa.copy'), 2000);
    } catch (e) {
      // no clipboard (plain http, denied): the text stays selectable on the page
    }
  });
  return btn;
}

// The 6-digit code input, as phones expect it.
export function codeInput(id) {
  return h('input', {
    id, name: 'code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code',
    pattern: '[0-9 ]*', maxlength: '9', required: true, spellcheck: 'false', class: 'mfa-code-input',
  });
}

export function isCode(s) {
  return CODE_RE.test(s);
}

// The QR code (drawn by bicd as SVG, shown as an image, never as markup) and the key in text.
export function enrolmentPanel(data) {
  const qr = h('img', { class: 'mfa-qr-img', alt: '', width: '200', height: '200', 'data-role': 'mfa-qr' });
  qr.src = 'data:image/svg+xml;base64,' + btoa(data.qr_svg);
  return h('div', { class: 'mfa-enrol', 'data-role': 'mfa-enrolment' },
    h('p', { class: 'mfa-step', i18n: 'mfa.step.scan' }),
    h('div', { class: 'mfa-qr', role: 'img', i18nLabel: 'mfa.qr_label' }, qr),
    h('p', { class: 'mfa-step-sub', i18n: 'mfa.step.key' }),
    h('div', { class: 'mfa-secret-row' },
      h('code', { class: 'mfa-secret', 'data-role': 'mfa-secret', text: grouped(data.secret) }),
      copyButton(data.secret, 'copy-secret')),
    h('p', { class: 'mfa-step', i18n: 'mfa.step.code' }));
}

// The recovery codes, shown once: a list, copy and download.
export function recoveryPanel(codes, username) {
  const text = t('mfa.recovery.file_head', { name: username }) + '\n\n' + codes.join('\n') + '\n';
  const download = button('mfa.download', { icon: 'arrowRight', variant: 'ghost', class: 'btn-sm', action: 'download-codes' });
  download.addEventListener('click', () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    const a = h('a', { href: url, download: 'bic-recovery-codes.txt' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  return h('div', { class: 'mfa-recovery', 'data-role': 'recovery-panel' },
    h('p', { class: 'mfa-recovery-text', i18n: 'mfa.recovery.text' }),
    h('ol', { class: 'recovery-list', 'data-role': 'recovery-codes' }, codes.map((c) => h('li', null, h('code', { text: c })))),
    h('div', { class: 'mfa-recovery-tools' }, copyButton(codes.join('\n'), 'copy-codes'), download));
}

// --- the Account security dialog ---------------------------------------------------------------

const PROOF_ERRORS = {
  forbidden: (e) => ({ key: e.reason === 'mfa_code_reused' ? 'mfa.error.reused' : e.reason === 'password_wrong' ? 'security.error.password' : 'security.error.proof' }),
  account_locked: 'login.error.locked',
  conflict: 'security.error.exists',
};

export function securityDialog(user) {
  const body = h('div', { class: 'security', 'data-role': 'security' });
  const alert = alertBox();
  alert.el.setAttribute('data-role', 'security-error');
  const d = dialog({ name: 'security', title: 'security.title', body: [alert.el, body] });

  // Runs fn with the button busy; shows the error in the dialog. Resolves to fn's value or undefined.
  async function act(btn, fn, errors) {
    alert.hide();
    const done = busy(btn);
    try {
      return await fn();
    } catch (e) {
      alert.showError(e, errors || PROOF_ERRORS);
      return undefined;
    } finally {
      done();
    }
  }

  // Replaces what the dialog shows (children may be nested arrays and nulls).
  function fill(...children) {
    clear(body).append(h('div', { class: 'security-pane' }, children));
  }

  function onEnter(input, btn) {
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        btn.click();
      }
    });
  }

  async function showStatus() {
    alert.hide();
    fill(h('div', { class: 'security-loading' }, h('span', { class: 'spinner', 'aria-hidden': 'true' })));
    let s;
    try {
      s = await api.get('/auth/mfa');
    } catch (e) {
      clear(body);
      alert.showError(e);
      return;
    }
    const on = s.totp.enabled;
    const groups = (s.required_by || []).map((g) => g.name).join(', ');
    const setup = button('security.setup', { variant: 'primary', icon: 'lock', action: 'mfa-setup', onclick: () => showPassword() });
    const regen = button('security.regenerate', { icon: 'refresh', action: 'mfa-regenerate', onclick: () => showProof('regenerate', s) });
    const off = button('security.disable', { variant: 'danger-ghost', icon: 'x', action: 'mfa-disable', onclick: () => showProof('disable', s) });
    fill(
      h('p', { class: 'dialog-intro', i18n: 'security.intro' }),
      h('div', { class: 'security-card', 'data-state': on ? 'on' : 'off' },
        h('div', { class: 'security-card-head' },
          h('span', { class: 'security-card-icon', 'aria-hidden': 'true' }, icon('lock')),
          h('div', { class: 'security-card-text' },
            h('span', { class: 'security-card-name', i18n: 'security.totp' }),
            on ? h('span', { class: 'muted', i18n: 'security.since', i18nArgs: { date: formatDate(s.totp.confirmed_at || '') } })
              : h('span', { class: 'muted', i18n: 'security.off_text' })),
          h('span', { class: ['badge', 'badge-dot', on ? 'badge-success' : 'badge-neutral'], 'data-role': 'mfa-state', i18n: on ? 'security.state.on' : 'security.state.off' })),
        on ? h('p', {
          class: s.recovery_codes_left <= 3 ? 'security-warn' : 'muted', 'data-role': 'codes-left',
          i18n: s.recovery_codes_left <= 3 ? 'security.codes_low' : 'security.codes_left', i18nArgs: { n: s.recovery_codes_left },
        }) : null),
      !on && s.required ? h('div', { class: 'alert alert-info', 'data-role': 'mfa-required' }, icon('info'),
        h('span', { i18n: 'security.required', i18nArgs: { groups } })) : null,
      h('div', { class: 'security-actions' }, on ? [regen, off] : [setup]));
  }

  function showPassword() {
    alert.hide();
    const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    const next = button('security.continue', { variant: 'primary', action: 'mfa-password-continue' });
    next.addEventListener('click', async () => {
      if (!pw.value) {
        alert.show('security.error.proof_missing');
        pw.focus();
        return;
      }
      const data = await act(next, () => api.post('/auth/mfa/totp', { password: pw.value }));
      if (data) showEnrol(data);
      else pw.select();
    });
    onEnter(pw, next);
    fill(
      field('security.password', pw, { hint: 'security.password_hint' }),
      h('div', { class: 'security-actions' }, button('security.back', { variant: 'ghost', onclick: () => showStatus() }), next));
    pw.focus();
  }

  function showEnrol(data) {
    const code = codeInput('security-code');
    const verify = button('security.confirm', { variant: 'primary', action: 'mfa-confirm' });
    verify.addEventListener('click', async () => {
      if (!isCode(code.value)) {
        alert.show('mfa.error.format');
        code.focus();
        return;
      }
      const out = await act(verify, () => api.post('/auth/mfa/totp/confirm', { code: code.value.replace(/\D/g, '') }),
        { validation_failed: 'security.error.code', conflict: 'security.error.exists' });
      if (!out) {
        code.select();
        return;
      }
      toast('security.enabled_done');
      showCodes(out.recovery_codes);
    });
    onEnter(code, verify);
    fill(enrolmentPanel(data), field('mfa.code', code, { hint: 'mfa.code_hint' }),
      h('div', { class: 'security-actions' }, button('security.back', { variant: 'ghost', onclick: () => showStatus() }), verify));
    code.focus();
  }

  function showCodes(codes) {
    fill(h('h3', { class: 'section-title', i18n: 'mfa.recovery.title' }), recoveryPanel(codes, user.username),
      h('div', { class: 'security-actions' }, button('security.done', { variant: 'primary', action: 'mfa-done', onclick: () => showStatus() })));
  }

  // Turning off and new recovery codes need the password or a current code.
  function showProof(kind, s) {
    alert.hide();
    const proof = h('input', { type: 'password', name: 'proof', autocomplete: 'current-password', required: true });
    const go = button(kind === 'disable' ? 'security.disable.submit' : 'security.regenerate.submit',
      { variant: kind === 'disable' ? 'danger' : 'primary', action: 'mfa-' + kind + '-confirm' });
    go.addEventListener('click', async () => {
      const v = proof.value;
      if (!v) {
        alert.show('security.error.proof_missing');
        proof.focus();
        return;
      }
      const bodyOut = isCode(v) ? { code: v.replace(/\D/g, '') } : { password: v };
      if (kind === 'disable') {
        const ok = await act(go, async () => {
          await api.del('/auth/mfa/totp', bodyOut);
          return true;
        });
        if (!ok) return proof.select();
        toast('security.disabled_done');
        showStatus();
      } else {
        const out = await act(go, () => api.post('/auth/mfa/recovery-codes', bodyOut));
        if (!out) return proof.select();
        toast('security.regenerated_done');
        showCodes(out.recovery_codes);
      }
      return undefined;
    });
    onEnter(proof, go);
    fill(
      kind === 'disable'
        ? [h('h3', { class: 'section-title', i18n: 'security.disable.title' }), h('p', { class: 'dialog-intro', i18n: 'security.disable.text' }),
          s.required ? h('div', { class: 'alert alert-info' }, icon('info'), h('span', { i18n: 'security.disable.required' })) : null]
        : [h('h3', { class: 'section-title', i18n: 'security.regenerate' }), h('p', { class: 'dialog-intro', i18n: 'security.regenerate.text' })],
      field('security.proof', proof, { hint: 'security.proof_hint' }),
      h('div', { class: 'security-actions' }, button('security.back', { variant: 'ghost', onclick: () => showStatus() }), go));
    proof.focus();
  }

  showStatus();
  return d;
}
