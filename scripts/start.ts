#!/usr/bin/env node
// `npm start`: the article's chain on the dev ports, all four processes with labelled output.
import { fileURLToPath } from 'node:url'
import concurrently from 'concurrently'
import { devCertificates } from './certs.js'

const repo = fileURLToPath(new URL('../../', import.meta.url))
const bin = (pkg: string) => `node packages/${pkg}/dist/src/cli.js`

const certs = await devCertificates()
const { result } = concurrently(
  [
    { name: 'app', prefixColor: 'green', command: `${bin('demo-app')} --listen 127.0.0.1:3000` },
    {
      name: 'static',
      prefixColor: 'blue',
      command: `${bin('static-server')} --listen 127.0.0.1:8081 --root packages/demo-app/public --proxy 127.0.0.1:3000`,
    },
    {
      name: 'router',
      prefixColor: 'magenta',
      command: `${bin('caching-router')} -a 127.0.0.1:8080 --static-backend 127.0.0.1:8081 --app-backend 127.0.0.1:3000`,
    },
    {
      name: 'tls',
      prefixColor: 'cyan',
      command: `${bin('tls-terminator')} --accept 127.0.0.1:8443 --connect 127.0.0.1:8080 --cert ${certs.cert} --key ${certs.key}`,
    },
  ],
  { cwd: repo, prefix: 'name', killOthersOn: ['failure', 'success'], killSignal: 'SIGTERM' },
)
process.stdout.write(
  `\nedgestack is starting: open https://localhost:8443/ (trust ${certs.caCert}), or http://localhost:8080/\n\n`,
)
result.then(
  () => {},
  () => {
    process.exitCode = 1
  },
)
