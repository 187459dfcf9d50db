import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** bench/templates/, next to the sources (tsc does not copy them into dist/). */
const TEMPLATES = fileURLToPath(new URL('../templates/', import.meta.url))
export const REPO = fileURLToPath(new URL('../../', import.meta.url))

export type TemplateName = 'nginx.conf' | 'nginx-ceiling.conf' | 'default.vcl' | 'stunnel.conf' | 'hitch.conf'

/**
 * Writes `dir/<out>` from a template, with every `{{NAME}}` filled in. A placeholder left
 * without a value is our bug: fail loudly rather than start a program on a half-made file.
 */
export async function renderTemplate(
  name: TemplateName,
  dir: string,
  out: string,
  vars: Record<string, string | number>,
): Promise<string> {
  const text = await readFile(join(TEMPLATES, name), 'utf8')
  const rendered = text.replace(/\{\{([A-Z_]+)\}\}/g, (_, key: string) => {
    const v = vars[key]
    if (v === undefined) throw new Error(`template ${name}: no value for {{${key}}}`)
    return String(v)
  })
  const file = join(dir, out)
  await writeFile(file, rendered)
  return file
}
