import { UsageError } from '@edgestack/common'
import type { HitchSetting } from '../config/hitch-conf.js'
import { readHitchConf } from '../config/hitch-conf.js'
import type { ServiceModel } from '../config/model.js'
import { loadStunnelConf } from '../config/stunnel-conf.js'
import type { KeyPairFiles } from './atomic-files.js'

/** What `tls-terminator acme` manages: the key pair a configuration names, and whom to signal. */
export interface ManagedFiles {
  files: KeyPairFiles
  /** stunnel.conf's `pid`; hitch takes its pid file only as `--pidfile` (then `--pid-file` here). */
  pidFile: string | undefined
}

/** A stunnel.conf's section: the one `--service NAME` names, or the only pair of files in it. */
export async function stunnelManagedFiles(file: string, service: string | undefined): Promise<ManagedFiles> {
  const { model } = await loadStunnelConf(file)
  const services = model.listeners.flatMap((l) => [l.service, ...l.virtualHosts.map((v) => v.service)])
  let picked: ServiceModel
  if (service !== undefined) {
    const s = services.find((x) => x.name === service)
    if (!s) throw new UsageError(`acme: --service ${service}: no such section in ${file} (it has ${services.map((x) => x.name).join(', ')})`)
    picked = s
  } else {
    const pairs = new Map(services.map((s) => [`${s.cert}\0${s.key}`, s]))
    if (pairs.size !== 1) throw new UsageError(`acme: ${file} names ${pairs.size} certificates: choose one with --service (${services.map((x) => x.name).join(', ')})`)
    picked = [...pairs.values()][0] as ServiceModel
  }
  return { files: { cert: picked.cert, key: picked.key }, pidFile: model.global.pid }
}

/**
 * A hitch.conf's certificate: its `pem-file`s (top level, in frontend blocks, or a frontend's
 * `[HOST]:PORT+FILE`), the one `--service FILE` names or the only one. Read from the file's
 * settings alone, not through the whole model, because that one checks the certificate files
 * exist and the first order runs before they do. A pem-file string is one PEM with the chain and
 * the key (hitch.conf(5)); a block names the two files (`cert`, `private-key`).
 */
export async function hitchManagedFiles(file: string, service: string | undefined): Promise<ManagedFiles> {
  const settings = await readHitchConf(file)
  const pairs = new Map<string, KeyPairFiles>()
  let pemDir = false
  const add = (s: HitchSetting) => {
    const v = s.value
    if (v.kind === 'string') pairs.set(v.text, { cert: v.text, key: v.text })
    else if (v.kind === 'block') {
      const get = (k: string) => v.settings.find((x) => x.key === k && x.value.kind === 'string')?.value as { text: string } | undefined
      const cert = get('cert')?.text
      if (cert !== undefined) pairs.set(cert, { cert, key: get('private-key')?.text ?? cert })
    }
  }
  for (const s of settings) {
    if (s.key === 'pem-file') add(s)
    else if (s.key === 'pem-dir') pemDir = true
    else if (s.key === 'frontend') {
      if (s.value.kind === 'block') for (const inner of s.value.settings) if (inner.key === 'pem-file') add(inner)
      if (s.value.kind === 'string') {
        // `[HOST]:PORT+FILE`: the file after the first `+` past the port (hitch's frontend string).
        const plus = s.value.text.indexOf('+', s.value.text.indexOf(']'))
        if (plus !== -1) add({ ...s, value: { kind: 'string', text: s.value.text.slice(plus + 1) } })
      }
    }
  }
  const names = [...pairs.keys()]
  if (service !== undefined) {
    const files = pairs.get(service)
    if (!files) throw new UsageError(`acme: --service ${service}: ${file} names no such pem-file (it has ${names.join(', ') || 'none'})`)
    return { files, pidFile: undefined }
  }
  if (names.length === 1) return { files: pairs.get(names[0] as string) as KeyPairFiles, pidFile: undefined }
  if (names.length === 0) {
    throw new UsageError(`acme: ${file} names no pem-file${pemDir ? ' (a pem-dir holds many: name the file with a pem-file)' : ''}`)
  }
  throw new UsageError(`acme: ${file} names ${names.length} certificates: choose one with --service FILE (${names.join(', ')})`)
}
