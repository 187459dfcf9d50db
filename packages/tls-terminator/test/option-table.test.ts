import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '@edgestack/common'
import { loadStunnelConf } from '../src/index.js'
import { OPTION_NAMES, optionSpec } from '../src/config/option-table.js'
import { certLines, scratch, writeConf } from './helpers.js'

// The table walk for stunnel options: each one we accept is implemented (read by the
// model builder), refused at load, or listed in the README as a documented no-op.

const PKG = fileURLToPath(new URL('../../', import.meta.url))
const readme = await readFile(join(PKG, 'README.md'), 'utf8')
const optionsTable = readme.slice(readme.indexOf('| | options |'), readme.indexOf('Errors read `FILE:LINE'))

async function sources(): Promise<string> {
  let out = ''
  const dir = join(PKG, 'src')
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts') && e.name !== 'option-table.ts') out += await readFile(join(e.parentPath, e.name), 'utf8')
  }
  return out
}

describe('stunnel options: no silent no-ops', () => {
  test('every option is implemented, refused, or a documented no-op', async () => {
    const src = await sources()
    for (const name of OPTION_NAMES) {
      const spec = optionSpec(name)
      assert.ok(spec)
      if (spec.support === 'yes') {
        assert.ok(src.includes(`'${name}'`), `${name} is marked implemented but no source file reads '${name}'`)
        assert.match(optionsTable, new RegExp(`\`${name}[\` ]`), `${name} is implemented but missing from the README's table`)
      } else if (spec.support === 'warn') {
        assert.match(optionsTable, new RegExp(`warning only[^\\n]*\`${name}\``), `${name} is a no-op not listed in the README`)
      }
    }
  })

  for (const name of OPTION_NAMES) {
    const spec = optionSpec(name)
    if (spec?.support !== 'no') continue
    test(`"${name} = x" is refused at load in one positioned line`, async (t) => {
      const dir = await scratch(t)
      const line = `${name} = x`
      const file = await writeConf(dir, spec.scope === 'global' ? [line, '[s]', 'accept = 127.0.0.1:0', 'connect = 8080', ...certLines] : ['[s]', 'accept = 127.0.0.1:0', 'connect = 8080', ...certLines, line])
      const err = await loadStunnelConf(file).then(
        () => assert.fail(`${line} was accepted`),
        (e: unknown) => e,
      )
      assert.ok(err instanceof ConfigError, String(err))
      assert.match(err.message, new RegExp(`^${file.replaceAll('.', '\\.')}:\\d+: option "${name}" is not supported`))
      assert.doesNotMatch(err.message, /\n/)
    })
  }

  test('values that mean what we always do are accepted without a warning', async (t) => {
    const dir = await scratch(t)
    const file = await writeConf(dir, ['log = append', '[s]', 'accept = 127.0.0.1:0', 'connect = 8080', ...certLines, 'socket = l:TCP_NODELAY=1', 'logId = sequential'])
    const { warnings } = await loadStunnelConf(file)
    assert.deepEqual(warnings, [])
  })
})
