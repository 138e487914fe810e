#!/usr/bin/env node
// @sigstore/tuf 4.0.2 as sigstore-js and npm use it, on one repository folder, for
// tests/publish_targets.rs:
//
//   node get-target.js REPO_DIR TRUSTED_ROOT TARGET_NAME [TARGET_NAME ...]
//
// REPO_DIR (metadata files and a targets/ folder) is served on 127.0.0.1 at an ephemeral port
// by this process for the run and no longer; initTUF({mirrorURL, rootPath, cachePath}) then
// getTarget(name) for each name. Prints one JSON line {"ok", "error", "targets": {name: content}}
// with each target's content as getTarget returned it; exit status 0 when every target was
// fetched, 1 when the client refused, 2 on a usage error.
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

async function main() {
  const [repo, rootPath, ...names] = process.argv.slice(2);
  if (!repo || !rootPath || names.length === 0) {
    console.error('usage: node get-target.js REPO_DIR TRUSTED_ROOT TARGET_NAME...');
    return 2;
  }
  const { initTUF } = require('@sigstore/tuf');
  const server = await serve(repo);
  const cachePath = fs.mkdtempSync(path.join(os.tmpdir(), 'conclave-sigstore-tuf-'));
  const mirrorURL = `http://127.0.0.1:${server.address().port}`;
  const result = { ok: false, error: null, targets: {} };
  try {
    const client = await initTUF({ mirrorURL, rootPath, cachePath, retry: 0 });
    for (const name of names) {
      result.targets[name] = await client.getTarget(name);
    }
    result.ok = true;
  } catch (e) {
    result.error = `${e.name}: ${e.message}`;
  } finally {
    server.close();
    fs.rmSync(cachePath, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result));
  return result.ok ? 0 : 1;
}

main().then((code) => process.exit(code));
