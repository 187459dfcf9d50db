/** builtin.vcl's vcl_synth / vcl_backend_error page, byte for byte varnishd's "guru meditation". */
export function guruMeditation(status: number, reason: string, xid: number): string {
  return `<!DOCTYPE html>
<html>
  <head>
    <title>${status} ${escapeHtml(reason)}</title>
  </head>
  <body>
    <h1>Error ${status} ${escapeHtml(reason)}</h1>
    <p>${escapeHtml(reason)}</p>
    <h3>Guru Meditation:</h3>
    <p>XID: ${xid}</p>
    <hr>
    <p>Varnish cache server</p>
  </body>
</html>
`
}

function escapeHtml(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}
