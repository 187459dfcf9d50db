import { fstat, readFile as readFileAt } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError, type SourcePosition } from '@edgestack/common'
import { type BuildOptions, type BuiltModel, buildModel, type RawOption, type RawSection } from './build-model.js'

/** stunnel refuses deeper nesting too; it also stops include loops. */
const MAX_INCLUDE_DEPTH = 8

/**
 * Reads a stunnel.conf (stunnel(8), "CONFIGURATION FILE"): `name = value` lines, `[service]`
 * headers, comments starting with `;` or `#` (stunnel's parser skips both), option names in any
 * case, and `include = DIRECTORY` whose files are read in name order, as if pasted in place.
 * Like stunnel there are no trailing comments: everything after `=` is the value.
 */
export async function loadStunnelConf(file: string | ConfFd, opts: Omit<BuildOptions, 'source'> = {}): Promise<BuiltModel> {
  const sections: { name: string | undefined; position: SourcePosition | undefined; options: RawOption[] }[] = [
    { name: undefined, position: undefined, options: [] },
  ]
  await readInto(file, sections, 0, undefined)
  return buildModel(sections as RawSection[], { ...opts, source: typeof file === 'string' ? file : String(file.fd) })
}

/**
 * fs/promises reads only paths and FileHandles; the callback API also reads a bare descriptor.
 * Only a file or a pipe: a descriptor number the caller did not open may be one of Node's own
 * (its event loop's), which must not be read.
 */
function readDescriptor(fd: number): Promise<string> {
  return new Promise((resolve, reject) =>
    fstat(fd, (err, st) => {
      if (err) return reject(err)
      if (!st.isFile() && !st.isFIFO()) return reject(new Error('not a file or a pipe'))
      readFileAt(fd, 'utf8', (e, text) => (e ? reject(e) : resolve(text)))
    }),
  )
}

/** `stunnel -fd N`: the file's text comes from an open descriptor; messages say `N:LINE:`, as stunnel's do. */
export interface ConfFd {
  fd: number
}

async function readInto(
  file: string | ConfFd,
  sections: { name: string | undefined; position: SourcePosition | undefined; options: RawOption[] }[],
  depth: number,
  includedFrom: SourcePosition | undefined,
): Promise<void> {
  let text: string
  const label = typeof file === 'string' ? file : String(file.fd)
  try {
    text = typeof file === 'string' ? await readFile(file, 'utf8') : await readDescriptor(file.fd)
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message
    if (includedFrom) throw new ConfigError(`cannot read ${label}: ${why}`, { position: includedFrom, directive: 'include' })
    if (typeof file !== 'string') throw new ConfigError(`cannot read the configuration from file descriptor ${label}: ${why}`)
    throw new ConfigError(`cannot read configuration file ${label}: ${why}`)
  }
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const position = { file: label, line: i + 1 }
    const line = (lines[i] as string).trim()
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue
    if (line.startsWith('[')) {
      if (!line.endsWith(']') || line.length < 3) {
        throw new ConfigError(`malformed section header "${line}": expected [name]`, { position })
      }
      sections.push({ name: line.slice(1, -1).trim(), position, options: [] })
      continue
    }
    const eq = line.indexOf('=')
    if (eq === -1) throw new ConfigError(`expected "option = value", got "${line}"`, { position })
    const name = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    if (name === '') throw new ConfigError(`missing option name before "="`, { position })
    if (name.toLowerCase() === 'include') {
      if (depth >= MAX_INCLUDE_DEPTH) throw new ConfigError('includes nested too deeply (a loop?)', { position, directive: 'include' })
      for (const part of await includedFiles(value, position)) await readInto(part, sections, depth + 1, position)
      continue
    }
    ;(sections.at(-1) as { options: RawOption[] }).options.push({ name, value, position })
  }
}

/**
 * stunnel's `include` names a directory; we also take a single file, which stunnel would refuse
 * (so a config that relies on it only runs here).
 */
async function includedFiles(path: string, position: SourcePosition): Promise<string[]> {
  if (path === '') throw new ConfigError('expected a directory', { position, directive: 'include' })
  let isDirectory: boolean
  try {
    isDirectory = (await stat(path)).isDirectory()
  } catch (err) {
    throw new ConfigError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code}`, { position, directive: 'include' })
  }
  if (!isDirectory) return [path]
  // As stunnel's include_config: every name that stat(2) calls a regular file, so a symlink
  // to a file counts (a conf.d of links, as Debian's sites-enabled) and a dangling one does not.
  const names = (await readdir(path)).sort()
  const files: string[] = []
  for (const name of names) {
    const full = join(path, name)
    if (await stat(full).then((st) => st.isFile(), () => false)) files.push(full)
  }
  return files
}
