/* global io */
// The demo page: connects back through the chain it was served by (wss: when the page is https:),
// shows how it is connected, and the messages every connected client sends.
;(() => {
  const $ = (id) => document.getElementById(id)
  const params = new URLSearchParams(location.search)
  const forced = params.get('transport')
  const socket = io({ transports: forced ? [forced] : ['polling', 'websocket'] })
  const secure = location.protocol === 'https:'
  const samples = []
  let me = ''

  $('origin').textContent = location.host
  // The HTTP version this page came over, as the browser negotiated it (ALPN h2 through hitch's
  // alpn-protos or tls-terminator's, http/1.1 otherwise): the navigation's resource timing.
  const navigation = performance.getEntriesByType('navigation')[0]
  $('http-protocol').textContent = navigation?.nextHopProtocol || 'unknown'
  // Plain http: goes straight to the router (the article's :80), so the TLS hop is not on the path.
  if (!secure) {
    $('tls-hop').classList.add('skipped')
    $('tls-hop').lastElementChild.textContent = 'not on this path'
  }

  const show = (state) => {
    $('state').textContent = state
    $('state').dataset.state = state
  }
  const showTransport = () => {
    const name = socket.io.engine?.transport?.name ?? '-'
    $('transport').textContent = name
    // Polling rides on https: requests; a websocket is its own wss: (or ws:) connection.
    const scheme = name === 'websocket' ? (secure ? 'wss:' : 'ws:') : location.protocol
    $('scheme').textContent = scheme
    $('scheme').dataset.secure = String(scheme === 'wss:' || scheme === 'https:')
  }
  const note = (text) => {
    const li = document.createElement('li')
    li.className = 'note'
    li.textContent = text
    add(li)
  }
  const add = (li) => {
    const time = document.createElement('time')
    time.textContent = new Date().toLocaleTimeString([], { hour12: false })
    li.prepend(time)
    $('messages').prepend(li)
    // Bounded: a page left open for a day must not grow without end.
    while ($('messages').children.length > 200) $('messages').lastElementChild.remove()
    document.body.classList.add('has-messages')
  }

  // The engine may upgrade to websocket before socket.io's own `connect`: listen from its open.
  socket.io.on('open', () => {
    socket.io.engine.once('upgrade', () => {
      showTransport()
      note(`upgraded to ${socket.io.engine.transport.name}`)
    })
  })
  socket.on('connect', () => {
    show('connected')
    showTransport()
    note(`connected over ${socket.io.engine.transport.name}`)
  })
  socket.on('disconnect', (reason) => {
    show('disconnected')
    note(`disconnected: ${reason}`)
  })
  socket.on('connect_error', () => show('error'))
  socket.on('welcome', (w) => {
    me = w.name
    $('me').textContent = me
  })
  socket.on('clients', (n) => {
    $('clients').textContent = String(n)
  })
  socket.on('message', (m) => {
    const li = document.createElement('li')
    if (m.from === me) li.className = 'mine'
    const from = document.createElement('span')
    from.className = 'from'
    from.textContent = m.from === me ? 'you' : m.from
    const text = document.createElement('span')
    text.className = 'text'
    text.textContent = m.text
    li.append(from, text)
    add(li)
  })

  const spark = () => {
    const max = Math.max(...samples, 1)
    const step = 100 / Math.max(samples.length - 1, 1)
    const points = samples.map((v, i) => `${(i * step).toFixed(1)},${(23 - (v / max) * 22).toFixed(1)}`)
    $('spark').firstElementChild.setAttribute('points', points.join(' '))
  }
  setInterval(() => {
    if (!socket.connected) return
    const sent = performance.now()
    socket.emit('ping-rtt', () => {
      const ms = performance.now() - sent
      $('rtt').textContent = `${ms.toFixed(1)} ms`
      samples.push(ms)
      if (samples.length > 40) samples.shift()
      spark()
    })
  }, 1000)

  $('send').addEventListener('submit', (e) => {
    e.preventDefault()
    const text = $('message').value.trim()
    if (text) socket.emit('message', text)
    $('message').value = ''
  })
})()
