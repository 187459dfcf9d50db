#!/usr/bin/env node
// Makes the development CA and localhost certificate in .certs/ once; later runs reuse them.
import { fileURLToPath } from 'node:url'
import { ensureDevCertificates } from '@edgestack/tls-terminator'

export const CERT_DIR = fileURLToPath(new URL('../../.certs/', import.meta.url))

export async function devCertificates() {
  const { files, created } = await ensureDevCertificates(CERT_DIR)
  if (created) process.stdout.write(`made development certificates in ${CERT_DIR} (trust ${files.caCert})\n`)
  return files
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await devCertificates()
