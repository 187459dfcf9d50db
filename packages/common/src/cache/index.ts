export * from './object-store.js'
export * from './stored-object.js'
