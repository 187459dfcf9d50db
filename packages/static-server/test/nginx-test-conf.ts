/**
 * The top of every differential nginx.conf: one worker, the pid and error log in the test's
 * directory, and the temp paths real nginx insists on creating kept there too (it would
 * otherwise try /var/lib/nginx). The caller continues inside `http {` and closes it.
 */
export function httpHead(dir: string, port: number, pid: string): string {
  return `
worker_processes 1;
pid ${pid};
error_log ${dir}/error-${port}.log warn;
events { worker_connections 64; }
http {
    include mime.types;
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    client_body_temp_path ${dir}/tmp/client;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;`
}
