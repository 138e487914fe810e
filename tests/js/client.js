#!/usr/bin/env node
// The npm TUF clients on one repository folder, for tests/client_gate.rs:
//
//   node client.js CLIENT REPO_DIR TRUSTED_ROOT TARGET_NAME [TARGET_NAME ...]
//
// CLIENT is "tuf-js" (tuf-js 5's Updater: refresh, getTargetInfo, downloadTarget) or
// "sigstore-tuf" (@sigstore/tuf 4: initTUF and getTarget, with the tuf-js 4 it depends on, as
// npm and sigstore-js use it). REPO_DIR holds the metadata files and a targets/ folder; it is
// served on 127.0.0.1 at an ephemeral port by this process for the run and no longer.
// Prints one JSON line {"client", "ok", "error"}; exit status 0 when every target was fetched
// and verified, 1 when the client refused, 2 on a usage error.
'use strict';
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');

function serve(dir) {
  const root = path.resolve(dir);
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.resolve(root, '.' + rel);
    if (!file.startsWith(root + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function tufJs(base, trustedRoot, targets, work) {
  const { Updater } = require('tuf-js');
  const metadataDir = path.join(work, 'metadata');
  const targetDir = path.join(work, 'targets');
  fs.mkdirSync(metadataDir, { recursive: true });
  fs.mkdirSync(targetDir, { recursive: true });
  fs.copyFileSync(trustedRoot, path.join(metadataDir, 'root.json'));
  const updater = new Updater({
    metadataBaseUrl: base,
    targetBaseUrl: `${base}/targets`,
    metadataDir,
    targetDir,
    config: { fetchRetry: 0 },
  });
  await updater.refresh();
  for (const [i, target] of targets.entries()) {
    const info = await updater.getTargetInfo(target);
    if (!info) throw new Error(`target ${target} not found`);
    await updater.downloadTarget(info, path.join(targetDir, `download-${i}`));
  }
}

async function sigstoreTuf(base, trustedRoot, targets, work) {
  const { initTUF } = require('@sigstore/tuf');
  const client = await initTUF({
    mirrorURL: base,
    rootPath: trustedRoot,
    cachePath: work,
    retry: 0,
  });
  for (const target of targets) {
    await client.getTarget(target);
  }
}

async function main() {
  const [client, repo, trustedRoot, ...targets] = process.argv.slice(2);
  const run = { 'tuf-js': tufJs, 'sigstore-tuf': sigstoreTuf }[client];
  if (!run || !repo || !trustedRoot || targets.length === 0) {
    console.error('usage: node client.js tuf-js|sigstore-tuf REPO_DIR TRUSTED_ROOT TARGET_NAME...');
    return 2;
  }
  const server = await serve(repo);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'conclave-js-'));
  const base = `http://127.0.0.1:${server.address().port}`;
  let result;
  try {
    await run(base, trustedRoot, targets, work);
    result = { client, ok: true, error: null };
  } catch (e) {
    result = { client, ok: false, error: `${e.name}: ${e.message}` };
  } finally {
    server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result));
  return result.ok ? 0 : 1;
}

main().then((code) => process.exit(code));
