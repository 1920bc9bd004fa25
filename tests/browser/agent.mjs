// A stand-in bic-agent for the browser tests: there are no real agents in the test stack, so
// this enrolls with a token over HTTPS (Node's https, trusting the stack's own certificate) and
// heartbeats like docs/agent-protocol.md says. Its listen_url points at a closed port, so any
// task CCC pushes to it fails with "agent unreachable".
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { stack, unique } from './lib.mjs';

export const FACTS = {
  cpus: 16, cores: 8, memory_mib: 64000, storage_gib: 500,
  nics: [{ name: 'ens1f0', speed_mbps: 1000, sriov_capable: true, sriov_total_vfs: 63, driver: 'ixgbe' }],
  hypervisor: { type: 'QEMU', version: '7.2.0' },
};

// POST path with a JSON body to the stack, no cookies, no CSRF token, no Origin.
function post(pathname, body, headers = {}) {
  const s = stack();
  const url = new URL(pathname, s.base);
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      ca: fs.readFileSync(path.join(s.var, 'tls', 'cert.pem')),
      headers: { 'Content-Type': 'application/json', 'Content-Length': data.length, Accept: 'application/json', ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch (e) {
          json = null;
        }
        resolve({ status: res.statusCode, json, text });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

export class FakeAgent {
  constructor(token, opts = {}) {
    this.token = token;
    this.machineId = opts.machineId || unique('machine-id-');
    this.hostname = opts.hostname || unique('bs-');
    this.listenUrl = opts.listenUrl || 'http://127.0.0.1:9';
    this.facts = opts.facts || FACTS;
    this.seq = 0;
    this.timer = null;
    this.host = opts.host || { cpu_pct: 30, mem_total_mib: 64000, mem_used_mib: 20000 };
    this.desktops = opts.desktops || [{ uuid: crypto.randomUUID(), name: 'desk-1', state: 'running', vcpus: 2, memory_mib: 2048 }];
  }

  async enroll() {
    const r = await post('/api/v1/agent/enroll', {
      token: this.token, machine_id: this.machineId, hostname: this.hostname,
      listen_url: this.listenUrl, agent_version: 'test', facts: this.facts,
    });
    if (r.status !== 200) throw new Error(`enroll ${this.hostname}: ${r.status} ${r.text}`);
    this.serverId = r.json.server_id;
    this.credential = r.json.credential;
    return r.json;
  }

  async heartbeat() {
    this.seq += 1;
    const r = await post('/api/v1/agent/heartbeat',
      { seq: this.seq, full: true, host: this.host, desktops: this.desktops },
      { Authorization: `Bearer ${this.serverId}.${this.credential}` });
    if (r.status !== 200) throw new Error(`heartbeat ${this.hostname}: ${r.status} ${r.text}`);
    return r.json;
  }

  // Heartbeats every `ms` until stop(): the stack counts a server offline after three
  // missed 1 s intervals, so a server that must stay online keeps this running.
  keepAlive(ms = 500) {
    this.stop();
    this.timer = setInterval(() => {
      this.heartbeat().catch(() => {});
    }, ms);
    return this;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/*
 * A building block with one module and an enrollment token for it, made through the admin
 * API: {bb, module, token}. Names are unique per call.
 */
export async function makeHierarchy(api, opts = {}) {
  const bb = await api.post('/building-blocks', { name: opts.bbName || unique('bt-bb-'), description: 'browser test' });
  const module = await api.post(`/building-blocks/${bb.id}/modules`, { name: opts.moduleName || unique('bt-mod-'), max_servers: opts.maxServers || 10 });
  const token = await api.post('/enrollment-tokens', { building_block_id: bb.id, module_id: module.id, description: 'browser test' });
  return { bb, module, token };
}

// An enrolled fake agent that has sent its first heartbeat (so it is online).
export async function onlineAgent(token, opts) {
  const a = new FakeAgent(token, opts);
  await a.enroll();
  await a.heartbeat();
  return a;
}

// Waits until fn() returns something truthy (polling every 200 ms), or throws after ms.
export async function until(fn, ms = 15000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}
