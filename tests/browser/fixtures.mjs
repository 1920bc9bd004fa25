// The Python test servers for the browser tests: a real slapd (tests/lib/slapd.py) and the small
// OpenID Connect provider (tests/lib/oidc_provider.py), run by fixtures.py in a child process
// that this module talks to with one JSON line per request. close() (or the end of this process,
// which closes the child's stdin) stops everything the child started.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function fixtures() {
  const child = spawn('python3', [path.join(HERE, 'fixtures.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
  const pending = new Map();
  let next = 1;
  let stderr = '';
  let exited = null;
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  child.on('exit', (code) => {
    exited = code;
    for (const { reject } of pending.values()) reject(new Error(`fixtures.py exited (${code}): ${stderr}`));
    pending.clear();
  });
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let ans;
    try {
      ans = JSON.parse(line);
    } catch {
      return;
    }
    const p = pending.get(ans.id);
    if (!p) return;
    pending.delete(ans.id);
    if (ans.ok) p.resolve(ans.result);
    else p.reject(new Error(`${p.cmd}: ${ans.error}\n${ans.trace || ''}`));
  });

  function call(cmd, args) {
    if (exited !== null) return Promise.reject(new Error(`fixtures.py has exited (${exited}): ${stderr}`));
    const id = next++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, cmd });
      child.stdin.write(JSON.stringify({ id, cmd, args: args || {} }) + '\n');
    });
  }

  return {
    call,
    async close() {
      if (exited !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), 20000);
      await gone;
      clearTimeout(timer);
    },
  };
}

// PEM with its line breaks as spaces (the API's strict JSON refuses control characters in
// strings; bicd puts them back), as tests/api/test_ldap.py sends it.
export function oneLine(pem) {
  return String(pem).trim().split(/\s+/).join(' ');
}
