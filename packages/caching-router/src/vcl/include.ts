import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { spanOf, type Token, tokenize } from './lexer.js'
import { type VclSource, VclError } from './source.js'

/** varnishd's default vcl_path, searched for includes that are neither absolute nor `./`. */
export const DEFAULT_VCL_PATH = ['/etc/varnish', '/usr/share/varnish/vcl']

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
}

/** strerror()-style text for a read failure, as varnishd prints it. */
export function readErrorText(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code
  return (code && ERRNO_TEXT[code]) ?? code ?? String(err)
}

/**
 * Tokenizes a VCL file with its `include "file";` lines replaced by the included files' tokens,
 * as VCC does (vcc_resolve_includes): `./` and `../` are relative to the including file, other
 * relative names are looked up in vcl_path. Errors keep pointing into the right file.
 */
export async function tokenizeWithIncludes(source: VclSource, vclPath: readonly string[] = DEFAULT_VCL_PATH, depth = 0): Promise<Token[]> {
  const tokens = tokenize(source)
  if (!tokens.some((t) => t.kind === 'id' && t.value === 'include')) return tokens
  const out: Token[] = []
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token
    if (t.kind !== 'id' || t.value !== 'include') {
      out.push(t)
      continue
    }
    const name = tokens[i + 1]
    if (name?.kind !== 'string') throw new VclError('include not followed by string constant.', spanOf(name ?? t))
    if (tokens[i + 2]?.value !== ';') throw new VclError("include <string> not followed by semicolon.", spanOf(name))
    if (depth >= 10) throw new VclError('Too deeply nested includes (10 levels)', spanOf(name))
    const included = await readIncluded(name, source.name, vclPath)
    const inner = await tokenizeWithIncludes(included, vclPath, depth + 1)
    inner.pop() // its eof
    // An included file may carry its own `vcl 4.x;` line (varnishd accepts it there too).
    const start = inner[0]?.value === 'vcl' && inner[2]?.value === ';' ? 3 : 0
    for (let j = start; j < inner.length; j++) out.push(inner[j] as Token)
    i += 2
  }
  return out
}

async function readIncluded(name: Token, from: string, vclPath: readonly string[]): Promise<VclSource> {
  const file = name.value
  const candidates = isAbsolute(file)
    ? [file]
    : file.startsWith('./') || file.startsWith('../')
      ? [resolve(dirname(from), file)]
      : vclPath.map((d) => join(d, file))
  let failure: unknown = Object.assign(new Error('ENOENT'), { code: 'ENOENT' })
  for (const path of candidates) {
    try {
      return { name: path, text: await readFile(path, 'utf8') }
    } catch (err) {
      failure = err
    }
  }
  // varnishd names the resolved path when there was only one place to look.
  const shown = candidates.length === 1 ? (candidates[0] as string) : file
  throw new VclError(`Cannot read file '${shown}' (${readErrorText(failure)})`, spanOf(name))
}
