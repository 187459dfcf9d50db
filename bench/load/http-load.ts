import type { LoadGenerator } from '../options.js'
import { capture } from '../procs.js'
import { runAutocannon } from './autocannon.js'
import type { HttpLoad, LoadResult } from './result.js'
import { runWrk } from './wrk.js'

export interface HttpLoadGenerator {
  name: string
  version: string
  run(load: HttpLoad): Promise<LoadResult>
}

/** wrk when installed (a C client is not the bottleneck), autocannon otherwise. */
export async function pickLoadGenerator(choice: LoadGenerator): Promise<HttpLoadGenerator> {
  if (choice !== 'autocannon') {
    const { out } = await capture('wrk', ['-v'])
    const m = /^wrk (\S+)/m.exec(out)
    if (m) return { name: 'wrk', version: m[1] as string, run: runWrk }
    if (choice === 'wrk') throw new Error('wrk is not installed: apt-get install wrk (or --load-generator autocannon)')
  }
  const { out } = await capture(process.execPath, ['-p', "require('autocannon/package.json').version"])
  return { name: 'autocannon', version: out.trim(), run: runAutocannon }
}
