export * from './dev-cert.js'
export * from './server.js'
