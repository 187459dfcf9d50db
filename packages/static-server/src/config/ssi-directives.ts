import { flag, size } from './directive-values.js'
import { gzipTypes } from './gzip-directives.js'
import type { LocationConf, SsiConf } from './model.js'
import type { Directive } from './parse-tree.js'

/** ngx_http_ssi_merge_loc_conf's defaults (nginx 1.22). */
export const SSI_DEFAULTS: SsiConf = {
  on: false,
  types: new Set(['text/html']),
  silentErrors: false,
  lastModified: false,
  valueLength: 255,
}

/**
 * Reads one ssi_* directive into `c`; false when `d` is none of those we keep. `typesHere`
 * says whether this level has an ssi_types line already (its lines add up within a level,
 * as ngx_http_types_slot's). ssi_min_file_chunk and ssi_ignore_recycled_buffers only decide
 * how the bytes travel (directive-support.ts); their values are checked with the others.
 */
export function ssiDirective(c: LocationConf, d: Directive, typesHere: boolean): boolean {
  const a0 = d.args[0] as string
  const set = (part: Partial<SsiConf>) => {
    c.ssi = { ...c.ssi, ...part }
  }
  switch (d.name) {
    case 'ssi':
      set({ on: flag(d) })
      return true
    case 'ssi_types':
      set({ types: gzipTypes(typesHere ? c.ssi.types : undefined, d.args) })
      return true
    case 'ssi_silent_errors':
      set({ silentErrors: flag(d) })
      return true
    case 'ssi_last_modified':
      set({ lastModified: flag(d) })
      return true
    case 'ssi_value_length':
      set({ valueLength: size(d, a0) })
      return true
  }
  return false
}
