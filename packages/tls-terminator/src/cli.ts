#!/usr/bin/env node
import { createLogger, handleSignals, parseAddress, parseCommandLine, runMain, UsageError } from '@edgestack/common'
import { ensureDevCertificates } from './dev-cert.js'
import { createTlsTerminator } from './server.js'

const HELP = `Usage: tls-terminator --accept ADDR --connect ADDR --cert FILE --key FILE
       tls-terminator cert --out DIR

Terminates TLS (stunnel's job) and forwards plain TCP to a backend.

  --accept ADDR    address to listen on: 443, :443, 127.0.0.1:443, [::1]:443
  --connect ADDR   backend to forward to (host defaults to 127.0.0.1)
  --cert FILE      PEM certificate chain
  --key FILE       PEM private key
  -h, --help       show this help

  cert --out DIR   make a development CA and a localhost certificate in DIR
`

runMain('tls-terminator', async () => {
  const argv = process.argv.slice(2)
  if (argv[0] === 'cert') {
    const { values } = parseCommandLine(argv.slice(1), { options: { out: { type: 'string' } } })
    if (!values.out) throw new UsageError('cert: --out DIR is required')
    const { files, created } = await ensureDevCertificates(values.out)
    process.stdout.write(`${created ? 'created' : 'kept existing'} ${files.cert}, ${files.key} (CA: ${files.caCert})\n`)
    return
  }
  const { values } = parseCommandLine(argv, {
    options: {
      accept: { type: 'string' },
      connect: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  for (const flag of ['accept', 'connect', 'cert', 'key'] as const) {
    if (!values[flag]) throw new UsageError(`--${flag} is required`)
  }
  const logger = createLogger({ name: 'tls-terminator' })
  const terminator = createTlsTerminator(
    {
      accept: parseAddress(values.accept as string),
      connect: parseAddress(values.connect as string, '127.0.0.1'),
      cert: values.cert as string,
      key: values.key as string,
      handshakeTimeoutMs: 10_000,
    },
    logger,
  )
  await terminator.listen()
  handleSignals(terminator, { logger })
})
