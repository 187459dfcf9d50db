import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { StartupError } from '@edgestack/common'
import { DEFAULT_VCL_PATH, readErrorText, tokenizeWithIncludes } from './include.js'
import { VclProgram } from './program.js'

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
  return new VclProgram(name, await tokenizeWithIncludes({ name: path, text }, vclPath))
}

/**
 * `caching-router -C -f FILE`, like `varnishd -C -f FILE`: compile and throw the first error.
 * Returns the compiled program (never warmed: no vcl_init, no probes) to `describe()` it.
 */
export function checkVclFile(path: string): Promise<VclProgram> {
  return loadVclFile(path, 'check')
}
