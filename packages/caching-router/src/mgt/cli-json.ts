import type { BanList } from '../bans.js'
import type { Params } from '../params.js'
import type { VclRegistry } from '../vcl/index.js'
import { type CliAnswer, CLIS } from './cli-session.js'

/**
 * varnishd's `-j` answers (vcli_serve.c VCLI_JSON_begin/end): an array of the format version,
 * the command's words, the time, then the payload items. varnishadm users and
 * prometheus-style exporters parse these, so they are JSON.parse-able and keyed as varnishd's.
 */
export function jsonAnswer(words: string[], items: unknown[], version = 2): CliAnswer {
  let out = `[ ${version}, ${JSON.stringify(words).replace(/","/g, '", "')}, ${(Date.now() / 1000).toFixed(3)}`
  for (const item of items) out += typeof item === 'object' ? `,\n  ${JSON.stringify(item, null, 2).replace(/\n/g, '\n  ')}` : `, ${JSON.stringify(item)}`
  return [CLIS.OK, `${out}\n]\n`]
}

/** `vcl.list -j` (mgt_vcl.c mcf_vcl_list_json): every VCL is `auto` and `warm` here. */
export function vclListJson(words: string[], vcl: VclRegistry | undefined): CliAnswer {
  const items = (vcl?.loaded() ?? []).map((e) => ({ status: e.active ? 'active' : 'available', state: 'auto', temperature: 'warm', busy: e.busy, name: e.name }))
  return jsonAnswer(words, items)
}

/** `ban.list -j` (cache_ban.c ccf_ban_list_json): `refs` is the objects a ban removed. */
export function banListJson(words: string[], bans: BanList): CliAnswer {
  const items = bans.entries().map((b) => ({ time: Number((b.time / 1000).toFixed(6)), refs: b.killed, completed: b.completed, spec: b.text }))
  return jsonAnswer(words, items)
}

/** `param.show -j [NAME]`. */
export function paramShowJson(words: string[], params: Params, name: string | undefined): CliAnswer {
  return jsonAnswer(words, params.json(name))
}

/**
 * `storage.list [-j]` (mgt_stevedore.c): ours is one malloc store (every `-s` summed, README),
 * listed under varnishd's default names, s0 and Transient.
 */
export function storageList(words: string[]): CliAnswer {
  if (words.includes('-j')) {
    return jsonAnswer(words, [
      { name: 's0', storage: 'malloc' },
      { name: 'Transient', storage: 'malloc' },
    ])
  }
  return [CLIS.OK, 'Storage devices:\n\tstorage.s0 = malloc\n\tstorage.Transient = malloc\n']
}
