import { execFile } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { loadNginxConf } from '../src/config/nginx-conf.js'
import { NGINX } from './helpers.js'

const run = promisify(execFile)

/**
 * Proxy and upstream directives as `nginx -t` judges them (ngx_http_proxy_module's and
 * ngx_http_upstream_module's command tables and handlers): `http` is the http block's body,
 * where `@S@` stands for `server { listen 127.0.0.1:1; ... }` around the text after it.
 */
export const LOAD_CASES: [name: string, http: string][] = [
  ['proxy_redirect default before proxy_pass', 'server { listen 127.0.0.1:1; location / { proxy_redirect default; proxy_pass http://127.0.0.1:2; } }'],
  ['proxy_redirect default after proxy_pass', 'server { listen 127.0.0.1:1; location / { proxy_pass http://127.0.0.1:2; proxy_redirect default; } }'],
  ['proxy_redirect default at server level', 'server { listen 127.0.0.1:1; proxy_redirect default; }'],
  ['proxy_redirect with one odd word', 'server { listen 127.0.0.1:1; proxy_redirect sometimes; }'],
  ['proxy_redirect with a bad regex', 'server { listen 127.0.0.1:1; proxy_redirect ~^(x /y; }'],
  ['proxy_redirect off with a replacement', 'server { listen 127.0.0.1:1; proxy_redirect off /x; }'],
  ['proxy_redirect false', 'server { listen 127.0.0.1:1; proxy_redirect false; }'],
  ['proxy_redirect regex', 'server { listen 127.0.0.1:1; proxy_redirect ~*^http://(.*)$ /$1; }'],
  ['proxy_hide_header with two names', 'server { listen 127.0.0.1:1; proxy_hide_header A B; }'],
  ['proxy_pass_header', 'server { listen 127.0.0.1:1; proxy_pass_header Server; }'],
  ['proxy_ignore_headers unknown', 'server { listen 127.0.0.1:1; proxy_ignore_headers Foo; }'],
  ['proxy_ignore_headers known', 'server { listen 127.0.0.1:1; proxy_ignore_headers X-Accel-Redirect Set-Cookie; }'],
  ['proxy_next_upstream unknown', 'server { listen 127.0.0.1:1; proxy_next_upstream foo; }'],
  ['proxy_next_upstream http_429 non_idempotent', 'server { listen 127.0.0.1:1; proxy_next_upstream error http_429 non_idempotent; }'],
  ['proxy_next_upstream_tries not a number', 'server { listen 127.0.0.1:1; proxy_next_upstream_tries x; }'],
  ['proxy_next_upstream_timeout not a time', 'server { listen 127.0.0.1:1; proxy_next_upstream_timeout x; }'],
  ['proxy_buffering maybe', 'server { listen 127.0.0.1:1; proxy_buffering maybe; }'],
  ['proxy_buffer_size not a size', 'server { listen 127.0.0.1:1; proxy_buffer_size 1x; }'],
  ['proxy_pass_request_body maybe', 'server { listen 127.0.0.1:1; proxy_pass_request_body maybe; }'],
  ['proxy_pass_request_headers maybe', 'server { listen 127.0.0.1:1; proxy_pass_request_headers maybe; }'],
  ['proxy_intercept_errors maybe', 'server { listen 127.0.0.1:1; proxy_intercept_errors maybe; }'],
  ['proxy_http_version 2.0', 'server { listen 127.0.0.1:1; proxy_http_version 2.0; }'],
  ['proxy_connect_timeout not a time', 'server { listen 127.0.0.1:1; proxy_connect_timeout 1x; }'],
  ['proxy_method with two words', 'server { listen 127.0.0.1:1; proxy_method GET POST; }'],
  ['proxy_set_header with one word', 'server { listen 127.0.0.1:1; proxy_set_header X; }'],
  ['proxy_set_header in an if', 'server { listen 127.0.0.1:1; location / { if ($arg_a) { proxy_set_header X y; } } }'],
  ['proxy_pass in the http block', 'proxy_pass http://127.0.0.1:2;'],
  ['proxy_pass with a URI in a regex location', 'server { listen 127.0.0.1:1; location ~ ^/a { proxy_pass http://127.0.0.1:2/b; } }'],
  ['proxy_pass with a URI in a named location', 'server { listen 127.0.0.1:1; location @n { proxy_pass http://127.0.0.1:2/b; } }'],
  ['proxy_pass ftp', 'server { listen 127.0.0.1:1; location / { proxy_pass ftp://127.0.0.1:2; } }'],
  ['proxy_pass twice', 'server { listen 127.0.0.1:1; location / { proxy_pass http://127.0.0.1:2; proxy_pass http://127.0.0.1:3; } }'],
  ['upstream without servers', 'upstream u { } server { listen 127.0.0.1:1; }'],
  ['upstream twice', 'upstream u { server 127.0.0.1:2; } upstream u { server 127.0.0.1:3; } server { listen 127.0.0.1:1; }'],
  ['server weight=0', 'upstream u { server 127.0.0.1:2 weight=0; } server { listen 127.0.0.1:1; }'],
  ['server weight=x', 'upstream u { server 127.0.0.1:2 weight=x; } server { listen 127.0.0.1:1; }'],
  ['server max_fails=x', 'upstream u { server 127.0.0.1:2 max_fails=x; } server { listen 127.0.0.1:1; }'],
  ['server fail_timeout=x', 'upstream u { server 127.0.0.1:2 fail_timeout=x; } server { listen 127.0.0.1:1; }'],
  ['server down and backup', 'upstream u { server 127.0.0.1:2 down; server 127.0.0.1:3 backup; } server { listen 127.0.0.1:1; }'],
  ['server unknown parameter', 'upstream u { server 127.0.0.1:2 fast; } server { listen 127.0.0.1:1; }'],
  ['server slow_start (nginx Plus)', 'upstream u { server 127.0.0.1:2 slow_start=10s; } server { listen 127.0.0.1:1; }'],
  ['keepalive 0', 'upstream u { server 127.0.0.1:2; keepalive 0; } server { listen 127.0.0.1:1; }'],
  ['keepalive x', 'upstream u { server 127.0.0.1:2; keepalive x; } server { listen 127.0.0.1:1; }'],
  ['keepalive outside upstream', 'keepalive 2; server { listen 127.0.0.1:1; }'],
  ['keepalive_requests x in upstream', 'upstream u { server 127.0.0.1:2; keepalive 2; keepalive_requests x; } server { listen 127.0.0.1:1; }'],
  ['keepalive_timeout with two values in upstream', 'upstream u { server 127.0.0.1:2; keepalive 2; keepalive_timeout 1 2; } server { listen 127.0.0.1:1; }'],
  ['keepalive_timeout in upstream', 'upstream u { server 127.0.0.1:2; keepalive 2; keepalive_timeout 30s; keepalive_time 1h; } server { listen 127.0.0.1:1; }'],
  // Balancing methods (the upstream hash, ip_hash, least_conn and random modules).
  ...(
    [
      ['ip_hash', 'ip_hash;'],
      ['ip_hash with an argument', 'ip_hash x;'],
      ['ip_hash then backup', 'ip_hash; server 127.0.0.1:3 backup;'],
      ['backup then ip_hash', 'server 127.0.0.1:3 backup; ip_hash;'],
      ['hash', 'hash $request_uri;'],
      ['hash consistent', 'hash $arg_k consistent;'],
      ['hash without a key', 'hash;'],
      ['hash with an odd word', 'hash $uri sometimes;'],
      ['hash with three words', 'hash $uri consistent x;'],
      ['hash with an unknown variable', 'hash $nosuchvar;'],
      ['hash with an open brace', 'hash "${uri";'],
      ['hash then backup', 'hash $uri; server 127.0.0.1:3 backup;'],
      ['hash then max_conns and down', 'hash $uri consistent; server 127.0.0.1:3 max_conns=2 down;'],
      ['random', 'random;'],
      ['random two', 'random two;'],
      ['random two least_conn', 'random two least_conn;'],
      ['random three', 'random three;'],
      ['random two most_conn', 'random two most_conn;'],
      ['random with three words', 'random two least_conn x;'],
      ['random then backup', 'random; server 127.0.0.1:3 backup;'],
      ['least_conn then backup', 'least_conn; server 127.0.0.1:3 backup;'],
      ['least_conn with an argument', 'least_conn x;'],
      ['two methods', 'least_conn; ip_hash;'],
      ['keepalive then a method', 'keepalive 2; hash $uri;'],
      ['max_conns', 'server 127.0.0.1:3 max_conns=10;'],
      ['max_conns=0', 'server 127.0.0.1:3 max_conns=0;'],
      ['max_conns=x', 'server 127.0.0.1:3 max_conns=x;'],
      ['fail_timeout in ms', 'server 127.0.0.1:3 fail_timeout=500ms;'],
      ['fail_timeout in minutes', 'server 127.0.0.1:3 fail_timeout=1m;'],
      ['zone', 'zone z 64k;'],
    ] as const
  ).map(([name, body]) => [name, `upstream u { server 127.0.0.1:2; ${body} } server { listen 127.0.0.1:1; location / { proxy_pass http://u; } }`] as [string, string]),
  ['hash outside upstream', 'hash $uri; server { listen 127.0.0.1:1; }'],
  ['ip_hash in a server', 'server { listen 127.0.0.1:1; ip_hash; }'],
  ['only backup servers', 'upstream u { server 127.0.0.1:2 backup; } server { listen 127.0.0.1:1; location / { proxy_pass http://u; } }'],
  ['proxy list directives twice', 'server { listen 127.0.0.1:1; proxy_hide_header A; proxy_hide_header B; proxy_pass_header C; proxy_pass_header D; proxy_redirect / /x; proxy_redirect /a /y; proxy_ignore_headers Vary; proxy_ignore_headers Expires; }'],
  ['proxy_method twice', 'server { listen 127.0.0.1:1; proxy_method GET; proxy_method POST; }'],
  ['proxy_buffer_size twice', 'server { listen 127.0.0.1:1; proxy_buffer_size 4k; proxy_buffer_size 8k; }'],
  ['proxy_cache off', 'server { listen 127.0.0.1:1; proxy_cache off; }'],
  ['proxy_cache_path and proxy_cache', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; }'],
  ['proxy_cache of an unknown zone', 'server { listen 127.0.0.1:1; proxy_cache nowhere; }'],
  ['proxy_cache twice', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache z; }'],
  ['proxy_cache_path without keys_zone', 'proxy_cache_path @DIR@/cache max_size=1m;'],
  ['proxy_cache_path keys_zone without a size', 'proxy_cache_path @DIR@/cache keys_zone=z;'],
  ['proxy_cache_path keys_zone too small', 'proxy_cache_path @DIR@/cache keys_zone=z:1k;'],
  ['proxy_cache_path levels 1:3', 'proxy_cache_path @DIR@/cache levels=1:3 keys_zone=z:1m;'],
  ['proxy_cache_path levels 1:2 inactive max_size use_temp_path', 'proxy_cache_path @DIR@/cache levels=1:2 keys_zone=z:1m inactive=1h max_size=10m use_temp_path=off;'],
  ['proxy_cache_path an unknown parameter', 'proxy_cache_path @DIR@/cache keys_zone=z:1m foo=1;'],
  ['proxy_cache_path a bad inactive', 'proxy_cache_path @DIR@/cache keys_zone=z:1m inactive=x;'],
  ['proxy_cache_path a zone twice', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; proxy_cache_path @DIR@/cache2 keys_zone=z:1m;'],
  ['proxy_cache_path a path twice', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; proxy_cache_path @DIR@/cache keys_zone=y:1m;'],
  ['proxy_cache_valid a time alone', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_valid 10m; }'],
  ['proxy_cache_valid any and statuses', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_valid 200 302 10m; proxy_cache_valid any 1m; }'],
  ['proxy_cache_valid status 2000', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_valid 2000 1m; }'],
  ['proxy_cache_valid status abc', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_valid abc 1m; }'],
  ['proxy_cache_valid a bad time', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_valid 200 1x; }'],
  ['proxy_cache_methods PUT', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_methods PUT; }'],
  ['proxy_cache_methods POST twice', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_methods POST; proxy_cache_methods POST; }'],
  ['proxy_cache_use_stale unknown', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_use_stale foo; }'],
  ['proxy_cache_use_stale every value', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_use_stale error timeout invalid_header updating http_500 http_502 http_503 http_504 http_403 http_404 http_429; }'],
  ['proxy_cache_key twice', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_key $uri; proxy_cache_key $uri; }'],
  ['proxy_cache_lock maybe', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_lock maybe; }'],
  ['proxy_cache_lock_timeout not a time', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_lock_timeout 1x; }'],
  ['proxy_cache_min_uses not a number', 'proxy_cache_path @DIR@/cache keys_zone=z:1m; server { listen 127.0.0.1:1; proxy_cache z; proxy_cache_min_uses x; }'],
  ['proxy_next_upstream updating', 'server { listen 127.0.0.1:1; proxy_next_upstream error updating; }'],
  ['recursive_error_pages maybe', 'server { listen 127.0.0.1:1; recursive_error_pages maybe; }'],
  ['error_page for 200', 'server { listen 127.0.0.1:1; error_page 200 /x; }'],
]

const wrap = (dir: string, http: string) => `pid ${dir}/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n${http.replaceAll('@DIR@', dir)}\n}\n`

/** nginx -t's verdict: `loaded`, or its message without the timestamp, file and pid. */
export async function nginxVerdict(dir: string, http: string): Promise<string> {
  const file = join(dir, 'nginx-t.conf')
  await writeFile(file, wrap(dir, http))
  const r = await run(NGINX, ['-t', '-p', dir, '-c', file]).then(
    ({ stderr }) => ['loaded', ...[...stderr.matchAll(/\[warn\] \d+#\d+: (.*)/g)].map((m) => `[warn] ${(m[1] as string).replaceAll(file, 'FILE')}`)].join('; '),
    (e: { stderr: string }) => e.stderr,
  )
  if (r.startsWith('loaded')) return r
  const m = /\[(emerg|warn)\] \d+#\d+: (.*)/.exec(r)
  return (m?.[2] ?? r).replaceAll(file, 'FILE')
}

export async function ourVerdict(dir: string, http: string): Promise<string> {
  const file = join(dir, 'ours-t.conf')
  await writeFile(file, wrap(dir, http))
  try {
    const model = await loadNginxConf({ file, prefix: dir })
    return ['loaded', ...model.warnings.map((w) => `[warn] ${w.replaceAll(file, 'FILE')}`)].join('; ')
  } catch (err) {
    return (err as Error).message.replace(/^\[emerg\] /, '').replaceAll(file, 'FILE')
  }
}

export async function runLoadCorpus(): Promise<{ name: string; same: boolean; ours: string; nginx: string }[]> {
  const dir = await mkdtemp(join(tmpdir(), 'proxy-load-'))
  const out = []
  for (const [name, http] of LOAD_CASES) {
    const nginx = await nginxVerdict(dir, http)
    const ours = await ourVerdict(dir, http)
    out.push({ name, same: nginx === ours, ours, nginx })
  }
  return out
}
