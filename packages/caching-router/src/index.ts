export * from './config/command-line.js'
export * from './config/flags-vcl.js'
export * from './config/model.js'
export * from './server.js'
