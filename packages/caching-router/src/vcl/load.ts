import { lookup } from 'node:dns/promises'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { StartupError } from '@edgestack/common'
import { DEFAULT_VCL_PATH, readErrorText, tokenizeWithIncludes } from './include.js'
import { parseIp } from './acl.js'
import { splitHostPort } from './compile-decls.js'
import { spanOf, type Token } from './lexer.js'
import { VclProgram } from './program.js'
import { VclError, type VclSource } from './source.js'

/**
 * Reads and compiles a VCL file and the files it includes (at start-up or on vcl.load; never on
 * a request path).
 */
export async function loadVclFile(path: string, name = 'boot', vclPath: readonly string[] = DEFAULT_VCL_PATH): Promise<VclProgram> {
  const full = resolve(path)
  let text: string
  try {
    text = await readFile(full, 'utf8')
  } catch (err) {
    throw new StartupError(`Cannot read -f file '${path}' (${readErrorText(err)})`, { cause: err })
  }
  return loadVclText({ name: path, text }, name, vclPath)
}

/** Compiles VCL text that is no file (`-b`'s, the article flags'): includes are still read. */
export async function loadVclText(source: VclSource, name = 'boot', vclPath: readonly string[] = DEFAULT_VCL_PATH): Promise<VclProgram> {
  const tokens = await tokenizeWithIncludes(source, vclPath)
  const [hosts] = await Promise.all([resolveAclHosts(tokens), checkBackendHosts(tokens)])
  return new VclProgram(name, tokens, { hosts })
}

/**
 * VCC resolves every backend `.host` when it compiles (vcc_backend.c), so a name that does not
 * resolve stops the load. We check the same, once; the connection resolves again when it opens.
 */
async function checkBackendHosts(tokens: readonly Token[]): Promise<void> {
  const names = new Map<string, Token>()
  for (let i = 0; i + 3 < tokens.length; i++) {
    if (tokens[i]?.value !== '.' || tokens[i + 1]?.value !== 'host' || tokens[i + 2]?.value !== '=') continue
    const t = tokens[i + 3] as Token
    if (t.kind === 'string' && !names.has(t.value) && !parseIp(splitHostPort(t.value).host)) names.set(t.value, t)
  }
  await Promise.all(
    [...names].map(async ([name, token]) => {
      try {
        // `host port` / `host:port` (varnishtest's bad_backend): the host part is looked up.
        await lookup(splitHostPort(name).host)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? ''
        throw new VclError(`Backend host '"${name}"' could not be resolved to an IP address: ${RESOLVER_TEXT[code] ?? code}`, spanOf(token))
      }
    }),
  )
}

const RESOLVER_TEXT: Record<string, string> = { ENOTFOUND: 'Name or service not known', EAI_AGAIN: 'Temporary failure in name resolution' }

/** Looks up every host name written in an `acl { }` block, once, at load time (as VCC does). */
async function resolveAclHosts(tokens: readonly Token[]): Promise<Map<string, string[]>> {
  const names = new Map<string, Token>()
  for (let i = 0; i + 2 < tokens.length; i++) {
    if (tokens[i]?.value !== 'acl' || tokens[i + 2]?.value !== '{') continue
    for (let j = i + 3; j < tokens.length && tokens[j]?.value !== '}'; j++) {
      const t = tokens[j] as Token
      if (t.kind === 'string' && !parseIp(t.value) && t.value !== 'localhost' && !names.has(t.value)) names.set(t.value, t)
    }
  }
  const hosts = new Map<string, string[]>()
  await Promise.all(
    [...names].map(async ([name, token]) => {
      try {
        hosts.set(name, (await lookup(name, { all: true })).map((a) => a.address))
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? ''
        throw new VclError(`DNS lookup(${name}): ${RESOLVER_TEXT[code] ?? code}`, spanOf(token))
      }
    }),
  )
  return hosts
}

/**
 * `caching-router -C -f FILE`, like `varnishd -C -f FILE`: compile and throw the first error.
 * Returns the compiled program (never warmed: no vcl_init, no probes) to `describe()` it.
 */
export function checkVclFile(path: string): Promise<VclProgram> {
  return loadVclFile(path, 'check')
}
