import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The checked-in certificates (see fixtures/make.sh): a CA, leaves for localhost and example names. */
export const FIXTURES = fileURLToPath(new URL('../../test/fixtures/', import.meta.url))
export const fixture = (name: string) => join(FIXTURES, name)

/** A scratch directory removed after the test. */
export async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tls-terminator-test-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes a config file (lines joined with \n) into `dir` and returns its path. */
export async function writeConf(dir: string, lines: string[], name = 'stunnel.conf'): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, `${lines.join('\n')}\n`)
  return file
}

/** A minimal valid service using the localhost fixture. */
export const certLines = [`cert = ${fixture('localhost.crt')}`, `key = ${fixture('localhost.key')}`]
