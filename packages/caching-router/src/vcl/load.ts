import { readFile } from 'node:fs/promises'
import { StartupError } from '@edgestack/common'
import { VclProgram } from './program.js'

/** Reads and compiles a VCL file (at start-up or on vcl.load; never on a request path). */
export async function loadVclFile(path: string, name = 'boot'): Promise<VclProgram> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new StartupError(`Cannot read -f file '${path}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  return new VclProgram(name, { name: path, text })
}

/**
 * `caching-router -C -f FILE`, like `varnishd -C -f FILE`: compile and throw the first error.
 * Returns the dialect the file was read as, for the caller's report.
 */
export async function checkVclFile(path: string): Promise<{ dialect: string }> {
  const program = await loadVclFile(path)
  return { dialect: program.compiled.dialect }
}
