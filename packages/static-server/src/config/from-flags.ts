import type { HostPort } from '@edgestack/common'
import { buildModel } from './build-model.js'
import type { NginxModel } from './model.js'
import { parseTree } from './parse-tree.js'

export interface FlagOptions {
  listen: HostPort
  root: string
  proxy: HostPort
}

/**
 * `--listen --root --proxy` build the article's server block, through the same parser as a
 * file, so the flags and `-c nginx.conf` can never drift apart.
 */
export async function modelFromFlags(f: FlagOptions, prefix: string): Promise<NginxModel> {
  const q = (s: string) => `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
  const host = f.listen.host.includes(':') ? `[${f.listen.host}]` : f.listen.host
  const up = f.proxy.host.includes(':') ? `[${f.proxy.host}]` : f.proxy.host
  const text = `
pid off;
error_log stderr info;
events {}
http {
  access_log /dev/stdout combined;
  upstream node { server ${up}:${f.proxy.port}; }
  server {
    listen ${host}:${f.listen.port};
    server_name localhost;
    root ${q(f.root)};
    location = / { proxy_pass http://node; }
    location / { try_files $uri $uri/ @proxy; }
    location @proxy { proxy_pass http://node; }
  }
}`
  const tree = await parseTree('', prefix, [], text)
  return buildModel(tree, { prefix }).model
}
