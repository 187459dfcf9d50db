import net from 'node:net'

// Linux hands out source ports for outgoing connections from 32768-60999
// (net.ipv4.ip_local_port_range). A port found free by binding port 0 comes from that range,
// so between the test choosing it and the real program binding it, any outgoing connection on
// the machine (stunnel to its backend, pebble's validator) may take it as its source port, and
// the bind fails with EADDRINUSE. Ports are therefore drawn below that range, and below the
// fixed ranges some suites keep for themselves (22300-23000, 32000-33000).
const FIRST = 10_000
const END = 22_000
const handedOut = new Set<number>()

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)))
  })
}

/**
 * A loopback port free right now and outside the ephemeral range, for a real program (nginx,
 * stunnel, varnishd, pebble) that must be told its port in a config file and cannot report
 * one it chose. Never the same port twice in one process.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const port = FIRST + Math.floor(Math.random() * (END - FIRST))
    if (handedOut.has(port)) continue
    if (await bindable(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error(`no free port in ${FIRST}-${END - 1} after 500 tries`)
}
