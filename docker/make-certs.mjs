#!/usr/bin/env node
// The compose `certs` one-shot: fills the certificates volume with the development CA and a
// server certificate when it is empty, and keeps what is there otherwise (so a browser that
// trusted ca.crt once keeps trusting it). Besides localhost/127.0.0.1/::1 the certificate names
// the compose service clients reach the stack by, given as arguments.
//
// Usage: node docker/make-certs.mjs DIR [DNS-NAME...]
import { parseCommandLine, runMain, UsageError } from '@edgestack/common'
import { ensureDevCertificates } from '@edgestack/tls-terminator'

runMain('make-certs', async () => {
  const { positionals } = parseCommandLine(process.argv.slice(2), { options: {}, allowPositionals: true })
  const [dir, ...dnsNames] = positionals
  if (!dir) throw new UsageError('usage: make-certs DIR [DNS-NAME...]')
  const { files, created } = await ensureDevCertificates(dir, { dnsNames })
  const names = ['localhost', ...dnsNames].join(', ')
  process.stdout.write(
    created
      ? `created ${files.cert} for ${names}, 127.0.0.1, ::1 (CA: ${files.caCert})\n`
      : `kept existing ${files.cert} (CA: ${files.caCert})\n`,
  )
})
