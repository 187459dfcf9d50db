/* global io */
// The demo page: connects back through the chain it was served by (wss: when the page is https:),
// shows how it is connected, and the messages every connected client sends.
;(() => {
  const $ = (id) => document.getElementById(id)
  const params = new URLSearchParams(location.search)
  const forced = params.get('transport')
  const socket = io({ transports: forced ? [forced] : ['polling', 'websocket'] })

  const show = (state) => {
    $('state').textContent = state
    $('state').dataset.state = state
  }
  const showTransport = () => {
    const name = socket.io.engine?.transport?.name ?? '-'
    $('transport').textContent = name
    const secure = location.protocol === 'https:'
    $('scheme').textContent = name === 'websocket' ? (secure ? 'wss:' : 'ws:') : location.protocol
  }

  socket.on('connect', () => {
    show('connected')
    showTransport()
    socket.io.engine.on('upgrade', showTransport)
  })
  socket.on('disconnect', () => show('disconnected'))
  socket.on('connect_error', () => show('error'))
  socket.on('clients', (n) => {
    $('clients').textContent = String(n)
  })
  socket.on('message', (m) => {
    const li = document.createElement('li')
    const from = document.createElement('span')
    from.className = 'from'
    from.textContent = m.from
    li.append(from, document.createTextNode(m.text))
    $('messages').prepend(li)
  })

  setInterval(() => {
    if (!socket.connected) return
    const sent = performance.now()
    socket.emit('ping-rtt', () => {
      $('rtt').textContent = `${(performance.now() - sent).toFixed(1)} ms`
    })
  }, 1000)

  $('send').addEventListener('submit', (e) => {
    e.preventDefault()
    const text = $('message').value.trim()
    if (text) socket.emit('message', text)
    $('message').value = ''
  })
})()
